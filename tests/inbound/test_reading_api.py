"""Reading endpoints: lists and filters, one email, attachments, tags, cancel, threads."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from mailboxes.models import Attachment, Direction, Email, EmailStatus
from mailboxes.services.inbound.receive import inbound_receive
from tests.conftest import Tenant, assert_error
from tests.inbound.conftest import build_mime, make_email

pytestmark = pytest.mark.django_db

Api = Callable[..., APIClient]


def emails_url(tenant: Tenant) -> str:
    return f"/v1/mailboxes/{tenant.mailbox.pk}/emails"


def email_url(tenant: Tenant, email: Email) -> str:
    return f"{emails_url(tenant)}/{email.pk}"


# --- list --------------------------------------------------------------------------


def test_list_is_newest_first_in_the_summary_shape(owner: Tenant, api: Api) -> None:
    older = make_email(owner.mailbox, subject="older")
    newer = make_email(owner.mailbox, subject="newer", has_attachments=True)
    response = api("read").get(emails_url(owner))
    assert response.status_code == 200
    body = response.json()
    assert [e["id"] for e in body["emails"]] == [newer.pk, older.pk]
    assert body["cursor"] is None
    row = body["emails"][0]
    assert set(row) >= {
        "id",
        "from",
        "to",
        "subject",
        "direction",
        "status",
        "spam_score",
        "spam_verdict",
        "received_at",
        "thread_id",
        "has_attachments",
        "delivered_at",
        "bounced_at",
        "bounce_type",
    }
    assert row["from"] == "alice@example.org"
    assert row["has_attachments"] is True
    assert row["received_at"].endswith("Z") or "+00:00" in row["received_at"]
    assert "markdown" not in row


def test_list_pages_with_the_cursor(owner: Tenant, api: Api) -> None:
    ids = [make_email(owner.mailbox).pk for _ in range(5)][::-1]
    client = api("read")
    first = client.get(emails_url(owner), {"limit": 2}).json()
    second = client.get(emails_url(owner), {"limit": 2, "cursor": first["cursor"]}).json()
    third = client.get(emails_url(owner), {"limit": 2, "cursor": second["cursor"]}).json()
    pages = [first, second, third]
    assert [e["id"] for p in pages for e in p["emails"]] == ids
    assert third["cursor"] is None


def test_every_filter(owner: Tenant, api: Api) -> None:
    now = timezone.now()
    hit = make_email(
        owner.mailbox,
        from_address="Bob.Builder@example.net",
        subject="Invoice for March",
        has_attachments=True,
        received_at=now - timedelta(days=1),
    )
    make_email(owner.mailbox, subject="Invoice for April", received_at=now - timedelta(days=10))
    make_email(
        owner.mailbox,
        direction=Direction.OUTBOUND,
        status=EmailStatus.SENT,
        subject="Invoice reply",
        from_address=owner.mailbox.address,
    )
    client = api("read")

    def ids(**params: str) -> list[str]:
        response = client.get(emails_url(owner), params)
        assert response.status_code == 200, response.content
        return [e["id"] for e in response.json()["emails"]]

    assert ids(sender="bob.builder") == [hit.pk]
    assert ids(subject_contains="march") == [hit.pk]
    assert ids(has_attachments="true") == [hit.pk]
    assert len(ids(has_attachments="false")) == 2
    assert len(ids(direction="inbound")) == 2
    assert len(ids(direction="outbound")) == 1
    assert len(ids(status="sent")) == 1
    assert len(ids(status="unread")) == 2
    two_days = (now - timedelta(days=2)).isoformat()
    assert hit.pk in ids(date_after=two_days)
    assert len(ids(date_after=two_days)) == 2
    assert len(ids(date_before=two_days)) == 1
    assert ids(date_after=(now - timedelta(days=2)).date().isoformat(), direction="inbound") == [
        hit.pk
    ]
    assert ids(date_after=two_days.replace("+00:00", "Z"), has_attachments="true") == [hit.pk]
    assert ids(since_id=hit.pk) == [e.pk for e in Email.objects.filter(pk__gt=hit.pk)]


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("status", "bogus"),
        ("status", "unread,nope"),
        ("date_after", "yesterday"),
        ("date_before", "2026-13-45"),
        ("date_after", "99999999999999999999"),
        ("direction", "sideways"),
        ("has_attachments", "yes"),
        ("limit", "0"),
        ("limit", "101"),
        ("cursor", "not-a-cursor"),
    ],
)
def test_bad_filter_values_are_invalid_parameter(
    owner: Tenant, api: Api, param: str, value: str
) -> None:
    response = api("read").get(emails_url(owner), {param: value})
    assert_error(response, "invalid_parameter", param=param)


def test_list_query_count_does_not_grow_with_page_size(
    owner: Tenant, api: Api, django_assert_num_queries: Any
) -> None:
    client = api("read")
    for _ in range(3):
        make_email(owner.mailbox)
    client.get(emails_url(owner))  # warm-up: the first call of the day creates the usage row
    # key lookup, mailbox, page, usage counter
    with django_assert_num_queries(5, exact=False) as small:
        client.get(emails_url(owner), {"limit": 1})
    for _ in range(30):
        make_email(owner.mailbox)
    with django_assert_num_queries(len(small.captured_queries)):
        response = client.get(emails_url(owner), {"limit": 30})
    assert len(response.json()["emails"]) == 30


# --- one email ---------------------------------------------------------------------


def test_read_marks_unread_as_read(owner: Tenant, api: Api) -> None:
    email = make_email(owner.mailbox, markdown="Hello **agent**", tags={"k": "v"}, cc=["c@x.io"])
    response = api("read").get(email_url(owner, email))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "read"
    assert body["markdown"] == "Hello **agent**"
    assert body["cc"] == ["c@x.io"]
    assert body["tags"] == {"k": "v"}
    assert body["attachments"] == []
    assert body["failure_reason"] is None
    assert response["ETag"]
    email.refresh_from_db()
    assert email.status == EmailStatus.READ
    assert email.read_at is not None


def test_read_with_if_none_match_answers_304(owner: Tenant, api: Api) -> None:
    email = make_email(owner.mailbox, status=EmailStatus.READ)
    client = api("read")
    etag = client.get(email_url(owner, email))["ETag"]
    assert client.get(email_url(owner, email), HTTP_IF_NONE_MATCH=etag).status_code == 304


def test_read_does_not_overwrite_a_newer_status(owner: Tenant, api: Api) -> None:
    email = make_email(owner.mailbox, status=EmailStatus.ARCHIVED)
    assert api("read").get(email_url(owner, email)).json()["status"] == "archived"


def test_outbound_failures_carry_the_reason(owner: Tenant, api: Api) -> None:
    email = make_email(
        owner.mailbox,
        direction=Direction.OUTBOUND,
        status=EmailStatus.REJECTED,
        failure_reason="Phishing pattern: deceptive link.",
    )
    assert api("read").get(email_url(owner, email)).json()["failure_reason"] == (
        "Phishing pattern: deceptive link."
    )


def _with_attachment(tenant: Tenant, **fields: Any) -> Email:
    email = make_email(tenant.mailbox, has_attachments=True, **fields)
    Attachment.objects.create(
        email=email, filename="notes v1.txt", content_type="text/plain", size=5, content=b"hello"
    )
    return email


def test_held_inbound_hides_content(owner: Tenant, api: Api) -> None:
    # Rejected inbound mail is not even listed (tests/oversight/test_agent_visibility.py).
    status = "pending_inbound_approval"
    email = _with_attachment(owner, status=status, markdown="secret body")
    client = api("read")
    body = client.get(email_url(owner, email)).json()
    assert body["status"] == status
    assert body["markdown"] == ""
    assert body["attachments"] == []
    assert body["subject"] == email.subject
    base = f"{email_url(owner, email)}/attachments/notes v1.txt"
    assert_error(client.get(base), "not_found", resource="attachment")
    assert_error(client.get(f"{base}/url"), "not_found", resource="attachment")


def test_attachment_download_and_signed_url(owner: Tenant, api: Api) -> None:
    email = _with_attachment(owner)
    client = api("read")
    base = f"{email_url(owner, email)}/attachments/notes v1.txt"
    response = client.get(base)
    assert response.status_code == 200
    assert response.content == b"hello"
    assert response["Content-Type"] == "text/plain"
    assert response["Content-Disposition"] == 'attachment; filename="notes v1.txt"'
    described = client.get(f"{base}/url").json()
    assert described["filename"] == "notes v1.txt"
    assert described["size_bytes"] == 5
    assert described["content_type"] == "text/plain"
    assert described["expires_in"] == 3600
    path = described["url"].split("://", 1)[1].split("/", 1)[1]
    public = Client().get(f"/{path}")  # no API key
    assert public.status_code == 200
    assert public.content == b"hello"
    assert_error(Client().get("/attachments/forged-token"), "not_found", resource="attachment")
    # One hour later the link is dead.
    later = timezone.now().timestamp() + 3601
    with mock.patch("django.core.signing.time.time", return_value=later):  # signing's clock
        assert_error(Client().get(f"/{path}"), "not_found", resource="attachment")


def test_link_stops_working_once_the_content_is_hidden(owner: Tenant, api: Api) -> None:
    email = _with_attachment(owner)
    url = api("read").get(f"{email_url(owner, email)}/attachments/notes v1.txt/url").json()["url"]
    path = "/" + url.split("://", 1)[1].split("/", 1)[1]
    Email.objects.filter(pk=email.pk).update(status=EmailStatus.REJECTED)
    assert_error(Client().get(path), "not_found", resource="attachment")


def test_missing_attachment_is_not_found(owner: Tenant, api: Api) -> None:
    email = _with_attachment(owner)
    url = f"{email_url(owner, email)}/attachments/other.txt"
    assert_error(api("read").get(url), "not_found", resource="attachment")
    assert_error(api("read").get(f"{url}/url"), "not_found", resource="attachment")


# --- tags --------------------------------------------------------------------------


def test_tags_put_replaces_get_reads_delete_removes(owner: Tenant, api: Api) -> None:
    email = make_email(owner.mailbox, tags={"old": "1"})
    client = api("read", "send")
    url = f"{email_url(owner, email)}/tags"
    put = client.put(url, {"tags": {"priority": "high", "topic": "billing"}}, format="json")
    assert put.status_code == 200
    assert put.json() == {"tags": {"priority": "high", "topic": "billing"}}
    assert client.get(url).json() == {"tags": {"priority": "high", "topic": "billing"}}
    assert client.delete(f"{url}/priority").json() == {"deleted": True}
    assert client.delete(f"{url}/priority").json() == {"deleted": False}
    assert client.get(url).json() == {"tags": {"topic": "billing"}}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "missing_parameter"),
        ({"tags": None}, "missing_parameter"),
        ({"tags": ["a"]}, "invalid_parameter"),
        ({"tags": {"k": {"nested": 1}}}, "invalid_parameter"),
        ({"tags": {f"k{i}": "v" for i in range(51)}}, "invalid_parameter"),
    ],
)
def test_bad_tags(owner: Tenant, api: Api, body: dict[str, Any], code: str) -> None:
    email = make_email(owner.mailbox)
    response = api("send").put(f"{email_url(owner, email)}/tags", body, format="json")
    assert_error(response, code, param="tags" if code == "missing_parameter" else None)


# --- cancel ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status", ["pending_scan", "scheduled", "pending_send_approval", "pending_inbound_approval"]
)
def test_cancel_from_cancellable_states(owner: Tenant, api: Api, status: str) -> None:
    email = make_email(owner.mailbox, status=status)
    client = api("send")
    url = f"{email_url(owner, email)}/cancel"
    response = client.post(url)
    assert response.status_code == 200
    assert response.json() == {"id": email.pk, "status": "cancelled"}
    assert client.post(url).json() == {"id": email.pk, "status": "cancelled"}


@pytest.mark.parametrize("status", ["sent", "sending", "unread", "rejected"])
def test_cancel_from_other_states_is_not_cancellable(owner: Tenant, api: Api, status: str) -> None:
    email = make_email(owner.mailbox, status=status)
    response = api("send").post(f"{email_url(owner, email)}/cancel")
    assert_error(response, "not_cancellable", status=status)
    email.refresh_from_db()
    assert email.status == status


# --- threads -----------------------------------------------------------------------


def test_thread_is_chronological_with_participants(owner: Tenant, api: Api) -> None:
    first = make_email(
        owner.mailbox,
        direction=Direction.OUTBOUND,
        status=EmailStatus.SENT,
        from_address=owner.mailbox.address,
        to=["alice@example.org"],
        message_id="<t1@acme>",
        subject="Plan",
    )
    raw = build_mime(to=owner.mailbox.address, subject="Re: Plan", in_reply_to="<t1@acme>")
    [reply] = inbound_receive(raw=raw, recipients=[owner.mailbox.address], source="test")
    make_email(owner.mailbox, subject="unrelated")
    response = api("read").get(f"/v1/mailboxes/{owner.mailbox.pk}/threads/{first.thread_id}")
    assert response.status_code == 200
    body = response.json()
    assert body["thread_id"] == first.thread_id
    assert body["message_count"] == 2
    assert [e["id"] for e in body["emails"]] == [first.pk, reply.pk]
    assert body["participants"] == [owner.mailbox.address, "alice@example.org"]
    assert body["has_unanswered_inbound"] is True
    assert body["emails"][1]["direction"] == "inbound"
    assert "markdown" not in body["emails"][0]


def test_unknown_thread_is_not_found(owner: Tenant, api: Api) -> None:
    response = api("read").get(f"/v1/mailboxes/{owner.mailbox.pk}/threads/01NOPE")
    assert_error(response, "not_found", resource="thread")


def test_thread_query_count_does_not_grow(
    owner: Tenant, api: Api, django_assert_num_queries: Any
) -> None:
    client = api("read")
    url = f"/v1/mailboxes/{owner.mailbox.pk}/threads/T1"
    make_email(owner.mailbox, thread_id="T1")
    client.get(url)  # warm-up: the first call of the day creates the usage counter row
    with django_assert_num_queries(5, exact=False) as small:
        client.get(url)
    for _ in range(20):
        make_email(owner.mailbox, thread_id="T1")
    with django_assert_num_queries(len(small.captured_queries)):
        assert client.get(url).json()["message_count"] == 21


# --- tenancy and scopes --------------------------------------------------------------


def test_other_tenants_ids_are_not_found(owner: Tenant, other: Tenant, api: Api) -> None:
    theirs = _with_attachment(other, status=EmailStatus.PENDING_SEND_APPROVAL)
    client = api("read", "send")
    foreign_mailbox = f"/v1/mailboxes/{other.mailbox.pk}/emails"
    assert_error(client.get(foreign_mailbox), "not_found", resource="mailbox")
    assert_error(client.get(f"{foreign_mailbox}/{theirs.pk}"), "not_found", resource="mailbox")
    # Their email id under our mailbox.
    mine = f"{emails_url(owner)}/{theirs.pk}"
    assert_error(client.get(mine), "not_found", resource="email")
    assert_error(client.get(f"{mine}/attachments/notes v1.txt"), "not_found", resource="email")
    assert_error(client.get(f"{mine}/tags"), "not_found", resource="email")
    assert_error(client.delete(f"{mine}/tags/x"), "not_found", resource="email")
    assert_error(
        client.put(f"{mine}/tags", {"tags": {}}, format="json"), "not_found", resource="email"
    )
    assert_error(client.post(f"{mine}/cancel"), "not_found", resource="email")
    thread = f"/v1/mailboxes/{owner.mailbox.pk}/threads/{theirs.thread_id}"
    assert_error(client.get(thread), "not_found", resource="thread")
    theirs.refresh_from_db()
    assert theirs.status == EmailStatus.PENDING_SEND_APPROVAL


def test_deleted_mailbox_is_not_found(owner: Tenant, api: Api) -> None:
    client = api("read")
    assert client.get(emails_url(owner)).json() == {"emails": [], "cursor": None}
    kept = make_email(owner.mailbox)  # its mail stays stored, yet is no longer listed
    owner.mailbox.is_active = False
    owner.mailbox.save()
    assert_error(client.get(emails_url(owner)), "not_found", resource="mailbox")
    assert_error(client.get(f"{emails_url(owner)}/{kept.pk}"), "not_found", resource="mailbox")


def test_scopes(owner: Tenant, api: Api) -> None:
    email = make_email(owner.mailbox)
    send_only, read_only = api("send"), api("read")
    assert_error(
        send_only.get(emails_url(owner)), "insufficient_permissions", required_scope="read"
    )
    assert_error(
        send_only.get(email_url(owner, email)), "insufficient_permissions", required_scope="read"
    )
    assert_error(
        read_only.put(f"{email_url(owner, email)}/tags", {"tags": {}}, format="json"),
        "insufficient_permissions",
        required_scope="send",
    )
    assert_error(
        read_only.delete(f"{email_url(owner, email)}/tags/x"),
        "insufficient_permissions",
        required_scope="send",
    )
    assert_error(
        read_only.post(f"{email_url(owner, email)}/cancel"),
        "insufficient_permissions",
        required_scope="send",
    )
    assert api("admin").get(emails_url(owner)).status_code == 200  # admin includes read


def test_no_key_is_authentication_required(owner: Tenant) -> None:
    assert_error(APIClient().get(emails_url(owner)), "authentication_required")
