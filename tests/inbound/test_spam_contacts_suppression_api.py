"""Spam list and labels, contacts, and the suppression list, over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import AuditEntry
from mailboxes.models import Contact, Direction, EmailStatus, Mailbox, Suppression
from tests.conftest import Tenant, assert_error
from tests.inbound.conftest import make_email

pytestmark = pytest.mark.django_db

Api = Callable[..., APIClient]


# --- spam --------------------------------------------------------------------------


def test_spam_list_spans_mailboxes_and_defaults_to_both_statuses(
    owner: Tenant, other: Tenant, api: Api
) -> None:
    second = Mailbox.objects.create(account=owner.account, address="two@acme.multimail.localhost")
    flagged = make_email(owner.mailbox, status=EmailStatus.SPAM_FLAGGED)
    quarantined = make_email(second, status=EmailStatus.SPAM_QUARANTINED)
    make_email(owner.mailbox, status=EmailStatus.UNREAD)
    make_email(other.mailbox, status=EmailStatus.SPAM_FLAGGED)
    client = api("read")
    body = client.get("/v1/emails").json()
    assert [e["id"] for e in body["emails"]] == [quarantined.pk, flagged.pk]
    assert body["emails"][0]["mailbox_id"] == second.pk
    only = client.get("/v1/emails", {"status": "spam_flagged"}).json()
    assert [e["id"] for e in only["emails"]] == [flagged.pk]


def test_spam_list_rejects_other_statuses(owner: Tenant, api: Api) -> None:
    assert_error(
        api("read").get("/v1/emails", {"status": "unread"}), "invalid_parameter", param="status"
    )


def test_spam_list_query_count(owner: Tenant, api: Api, django_assert_num_queries: Any) -> None:
    client = api("read")
    make_email(owner.mailbox, status=EmailStatus.SPAM_FLAGGED)
    client.get("/v1/emails")
    with django_assert_num_queries(5, exact=False) as small:
        client.get("/v1/emails", {"limit": 1})
    for _ in range(25):
        make_email(owner.mailbox, status=EmailStatus.SPAM_QUARANTINED)
    with django_assert_num_queries(len(small.captured_queries)):
        assert len(client.get("/v1/emails", {"limit": 25}).json()["emails"]) == 25


def test_report_spam_and_not_spam(owner: Tenant, api: Api) -> None:
    email = make_email(owner.mailbox, status=EmailStatus.READ)
    client = api("send")
    reported = client.post(f"/v1/emails/{email.pk}/report-spam")
    assert reported.status_code == 200
    assert reported.json() == {"id": email.pk, "status": "spam_quarantined", "user_label": "spam"}
    restored = client.post(f"/v1/emails/{email.pk}/not-spam")
    assert restored.json() == {"id": email.pk, "status": "unread", "user_label": "not_spam"}


def test_report_spam_leaves_held_mail_with_the_operator(owner: Tenant, api: Api) -> None:
    email = make_email(owner.mailbox, status=EmailStatus.PENDING_INBOUND_APPROVAL)
    body = api("send").post(f"/v1/emails/{email.pk}/report-spam").json()
    assert body["status"] == "pending_inbound_approval"
    assert body["user_label"] == "spam"


def test_spam_actions_not_found(owner: Tenant, other: Tenant, api: Api) -> None:
    theirs = make_email(other.mailbox, status=EmailStatus.SPAM_FLAGGED)
    outbound = make_email(owner.mailbox, direction=Direction.OUTBOUND, status=EmailStatus.SENT)
    client = api("send")
    for email_id in (theirs.pk, outbound.pk, "01NOPE"):
        for action in ("report-spam", "not-spam"):
            response = client.post(f"/v1/emails/{email_id}/{action}")
            assert_error(response, "not_found", resource="email")
    theirs.refresh_from_db()
    assert theirs.status == EmailStatus.SPAM_FLAGGED


def test_spam_scopes(owner: Tenant, api: Api) -> None:
    email = make_email(owner.mailbox)
    read_only = api("read")
    for action in ("report-spam", "not-spam"):
        response = read_only.post(f"/v1/emails/{email.pk}/{action}")
        assert_error(response, "insufficient_permissions", required_scope="send")
    assert_error(api("send").get("/v1/emails"), "insufficient_permissions", required_scope="read")


# --- contacts ----------------------------------------------------------------------


def test_contacts_create_search_delete(owner: Tenant, api: Api) -> None:
    client = api("send", "read")
    created = client.post(
        "/v1/contacts",
        {"name": "Ada Lovelace", "email": "ada@example.org", "tags": ["vip", "vip", "math"]},
        format="json",
    )
    assert created.status_code == 201
    contact = created.json()
    assert contact["name"] == "Ada Lovelace"
    assert contact["email"] == "ada@example.org"
    assert contact["tags"] == ["vip", "math"]
    assert isinstance(contact["created_at"], int)
    client.post("/v1/contacts", {"name": "Grace", "email": "grace@navy.example"}, format="json")
    assert [c["name"] for c in client.get("/v1/contacts").json()["contacts"]] == [
        "Grace",
        "Ada Lovelace",
    ]
    assert [c["id"] for c in client.get("/v1/contacts", {"q": "LOVE"}).json()["contacts"]] == [
        contact["id"]
    ]
    assert [c["name"] for c in client.get("/v1/contacts", {"q": "navy"}).json()["contacts"]] == [
        "Grace"
    ]
    deleted = api("admin").delete(f"/v1/contacts/{contact['id']}")
    assert deleted.json() == {"deleted": True}
    assert AuditEntry.objects.filter(action="contact.deleted", resource_id=contact["id"]).exists()
    assert_error(
        api("admin").delete(f"/v1/contacts/{contact['id']}"), "not_found", resource="contact"
    )


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"email": "a@example.org"}, "missing_parameter", "name"),
        ({"name": "A"}, "missing_parameter", "email"),
        ({"name": "", "email": "a@example.org"}, "missing_parameter", "name"),
        ({"name": "A", "email": "not-an-email"}, "invalid_parameter", "email"),
        ({"name": "A", "email": "a@example.org", "tags": "vip"}, "invalid_parameter", "tags"),
    ],
)
def test_contact_validation(
    owner: Tenant, api: Api, body: dict[str, Any], code: str, param: str
) -> None:
    assert_error(api("send").post("/v1/contacts", body, format="json"), code, param=param)
    assert not Contact.objects.exists()


def test_contacts_are_per_tenant(owner: Tenant, other: Tenant, api: Api) -> None:
    theirs = Contact.objects.create(account=other.account, name="Theirs", email="t@x.example")
    assert api("read").get("/v1/contacts").json()["contacts"] == []
    assert_error(api("admin").delete(f"/v1/contacts/{theirs.pk}"), "not_found", resource="contact")
    assert Contact.objects.filter(pk=theirs.pk).exists()


def test_contact_scopes(owner: Tenant, api: Api) -> None:
    contact = Contact.objects.create(account=owner.account, name="A", email="a@example.org")
    assert_error(
        api("read").post("/v1/contacts", {"name": "B", "email": "b@x.example"}, format="json"),
        "insufficient_permissions",
        required_scope="send",
    )
    assert_error(
        api("send").delete(f"/v1/contacts/{contact.pk}"),
        "insufficient_permissions",
        required_scope="admin",
    )


def test_contacts_query_count(owner: Tenant, api: Api, django_assert_num_queries: Any) -> None:
    client = api("read")
    Contact.objects.create(account=owner.account, name="first", email="f@x.example")
    client.get("/v1/contacts")
    with django_assert_num_queries(5, exact=False) as small:
        client.get("/v1/contacts", {"limit": 1})
    Contact.objects.bulk_create(
        Contact(account=owner.account, name=f"n{i}", email=f"n{i}@x.example") for i in range(30)
    )
    with django_assert_num_queries(len(small.captured_queries)):
        assert len(client.get("/v1/contacts", {"limit": 30}).json()["contacts"]) == 30


# --- suppression -------------------------------------------------------------------


def _suppress(tenant: Tenant, address: str, reason: str) -> Suppression:
    return Suppression.objects.create(
        account=tenant.account, mailbox=tenant.mailbox, email_address=address, reason=reason
    )


def test_suppression_list_and_remove(owner: Tenant, other: Tenant, api: Api) -> None:
    soft = _suppress(owner, "soft@example.org", "unsubscribe")
    hard = _suppress(owner, "hard@example.org", "hard_bounce")
    _suppress(other, "theirs@example.org", "complaint")
    client = api("admin")
    body = client.get("/v1/suppression").json()
    assert [s["id"] for s in body["suppressions"]] == [hard.pk, soft.pk]
    assert body["suppressions"][0] == {
        "id": hard.pk,
        "email_address": "hard@example.org",
        "reason": "hard_bounce",
        "mailbox_id": owner.mailbox.pk,
        "created_at": body["suppressions"][0]["created_at"],
    }
    assert body["cursor"] is None
    paged = client.get("/v1/suppression", {"limit": 1}).json()
    assert paged["cursor"]
    removed = client.delete("/v1/suppression/Soft@Example.org")
    assert removed.status_code == 200
    assert removed.json() == {"deleted": True, "email_address": "soft@example.org"}
    assert AuditEntry.objects.filter(action="suppression.removed").exists()
    assert_error(client.delete("/v1/suppression/hard@example.org"), "suppression_permanent")
    assert Suppression.objects.filter(pk=hard.pk).exists()
    assert_error(
        client.delete("/v1/suppression/soft@example.org"), "not_found", resource="suppression"
    )
    assert_error(
        client.delete("/v1/suppression/theirs@example.org"), "not_found", resource="suppression"
    )


def test_suppression_scopes(owner: Tenant, api: Api) -> None:
    _suppress(owner, "x@example.org", "manual")
    read_only = api("read", "send")
    assert_error(
        read_only.get("/v1/suppression"), "insufficient_permissions", required_scope="admin"
    )
    assert_error(
        read_only.delete("/v1/suppression/x@example.org"),
        "insufficient_permissions",
        required_scope="admin",
    )


def test_suppression_query_count(owner: Tenant, api: Api, django_assert_num_queries: Any) -> None:
    client = api("admin")
    _suppress(owner, "first@example.org", "manual")
    client.get("/v1/suppression")
    with django_assert_num_queries(5, exact=False) as small:
        client.get("/v1/suppression", {"limit": 1})
    Suppression.objects.bulk_create(
        Suppression(account=owner.account, email_address=f"s{i}@x.example", reason="manual")
        for i in range(30)
    )
    with django_assert_num_queries(len(small.captured_queries)):
        assert len(client.get("/v1/suppression", {"limit": 30}).json()["suppressions"]) == 30
