"""GET/PATCH/DELETE /v1/account."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

from accounts.models import Account, AccountState, AuditEntry
from mailboxes.models import Mailbox
from tests.conftest import assert_error, client_for, key_for

pytestmark = pytest.mark.django_db

APPROVAL_RE = re.compile(r"approval code:\s+([A-Z0-9]{3}-[A-Z0-9]{3}-[A-Z0-9]{3})")


def approval_code() -> str:
    return APPROVAL_RE.findall(mail.outbox[-1].body)[-1]


@pytest.fixture
def gated(owner: Any) -> Any:
    owner.account.require_operator_approval = True
    owner.account.save(update_fields=["require_operator_approval"])
    return owner


def test_get_account_info_shape(api: Any, owner: Any) -> None:
    response = api("read").get("/v1/account")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == owner.account.pk
    assert body["slug"] == "acme"
    assert body["plan"] == "starter"
    assert body["is_active"] is True
    assert body["sending_disabled"] is False
    assert body["sending_disabled_reason"] is None
    assert body["physical_address"] is None
    assert body["monthly_email_quota"] == 200
    assert body["emails_sent_this_month"] == 0
    assert body["max_mailboxes"] == 2
    assert body["storage_used_bytes"] == 0
    assert body["max_storage_bytes"] == 100 * 1024 * 1024
    assert response["ETag"]


def test_get_account_if_none_match_is_304(api: Any) -> None:
    client = api("read")
    etag = client.get("/v1/account")["ETag"]
    cached = client.get("/v1/account", HTTP_IF_NONE_MATCH=etag)
    assert cached.status_code == 304
    assert cached["ETag"] == etag


def test_patch_updates_and_audits(
    api: Any, owner: Any, django_capture_on_commit_callbacks: Any
) -> None:
    client = api("admin")
    etag = client.get("/v1/account")["ETag"]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.patch(
            "/v1/account",
            {
                "name": "Acme Two",
                "physical_address": "2 Road",
                "oversight_email": "new@acme.example",
            },
            format="json",
            HTTP_IF_MATCH=etag,
        )
    assert response.status_code == 200, response.content
    assert response.json()["name"] == "Acme Two"
    account = Account.objects.get(pk=owner.account.pk)
    assert account.physical_address == "2 Road"
    # A new oversight email waits for that address to confirm (its own tests cover it).
    assert account.oversight_email == "ops@acme.example"
    assert response.json()["pending_oversight_email"] == "new@acme.example"
    entry = AuditEntry.objects.get(account=account, action="account.updated")
    assert entry.actor_key_id is not None
    assert {tuple(message.to) for message in mail.outbox} == {
        ("new@acme.example",),
        ("ops@acme.example",),  # the old address is told
    }


def test_patch_with_stale_if_match_is_conflict(api: Any) -> None:
    response = api("admin").patch(
        "/v1/account", {"name": "X"}, format="json", HTTP_IF_MATCH='"stale"'
    )
    assert_error(response, "conflict", param="If-Match")


def test_patch_bad_email(api: Any) -> None:
    response = api("admin").patch("/v1/account", {"oversight_email": "nope"}, format="json")
    assert_error(response, "invalid_parameter", param="oversight_email")


def test_patch_needs_admin(api: Any) -> None:
    response = api("read", "send").patch("/v1/account", {"name": "X"}, format="json")
    assert_error(response, "insufficient_permissions", required_scope="admin")


def test_patch_with_agent_key_needs_operator_approval(
    gated: Any, api: Any, django_capture_on_commit_callbacks: Any
) -> None:
    client = api("admin")
    with django_capture_on_commit_callbacks(execute=True):
        pending = client.patch("/v1/account", {"name": "Renamed"}, format="json")
    assert pending.status_code == 202
    assert pending.json()["status"] == "pending_approval"
    assert Account.objects.get(pk=gated.account.pk).name == "Acme Org"
    wrong = client.patch(
        "/v1/account", {"name": "Renamed", "approval_code": "AAA-BBB-CCC"}, format="json"
    )
    assert_error(wrong, "validation_error", param="approval_code")
    done = client.patch(
        "/v1/account", {"name": "Renamed", "approval_code": approval_code()}, format="json"
    )
    assert done.status_code == 200
    assert Account.objects.get(pk=gated.account.pk).name == "Renamed"


def test_approval_code_is_bound_to_the_parameters(
    gated: Any, api: Any, django_capture_on_commit_callbacks: Any
) -> None:
    client = api("admin")
    with django_capture_on_commit_callbacks(execute=True):
        client.patch("/v1/account", {"name": "Renamed"}, format="json")
    other = client.patch(
        "/v1/account", {"name": "Something else", "approval_code": approval_code()}, format="json"
    )
    assert_error(other, "validation_error", param="approval_code")


def test_delete_removes_everything_and_frees_the_slug(
    api: Any, owner: Any, other: Any, django_capture_on_commit_callbacks: Any
) -> None:
    client = api("admin")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.delete("/v1/account")
    assert response.status_code == 200
    assert response.json() == {"status": "deleted"}
    assert not Account.objects.filter(slug="acme").exists()
    assert not Mailbox.objects.filter(address__endswith="@acme.multimail.localhost").exists()
    assert not get_user_model().objects.filter(username="ops@acme.example").exists()
    assert Account.objects.filter(pk=other.account.pk).exists()
    assert "deleted" in mail.outbox[-1].body
    assert_error(client.get("/v1/account"), "invalid_api_key")


def test_delete_with_agent_key_needs_approval(
    gated: Any, api: Any, django_capture_on_commit_callbacks: Any
) -> None:
    client = api("admin")
    with django_capture_on_commit_callbacks(execute=True):
        pending = client.delete("/v1/account")
    assert pending.status_code == 202
    assert Account.objects.filter(pk=gated.account.pk).exists()
    done = client.delete("/v1/account", {"approval_code": approval_code()}, format="json")
    assert done.status_code == 200
    assert not Account.objects.filter(pk=gated.account.pk).exists()


def test_deactivated_account_is_refused(owner: Any) -> None:
    _, raw = key_for(owner.account, "read")
    owner.account.state = AccountState.DEACTIVATED
    owner.account.deactivated_reason = "unpaid subscription"
    owner.account.save()
    response = client_for(raw).get("/v1/account")
    assert_error(response, "account_deactivated", reason="unpaid subscription")


def test_patch_etag_matches_the_next_get(api: Any) -> None:
    client = api("admin")
    patched = client.patch("/v1/account", {"name": "Acme Three"}, format="json")
    assert patched["ETag"] == client.get("/v1/account")["ETag"]
    again = client.patch(
        "/v1/account", {"name": "Acme Four"}, format="json", HTTP_IF_MATCH=patched["ETag"]
    )
    assert again.status_code == 200


def test_empty_patch_asks_for_no_approval(gated: Any, api: Any) -> None:
    response = api("admin").patch("/v1/account", {}, format="json")
    assert response.status_code == 200
    assert response.json()["name"] == "Acme Org"


def test_delete_handles_a_full_tenant(api: Any, owner: Any) -> None:
    from mailboxes.models import Attachment, Domain, Email, Suppression, WebhookSubscription

    domain = Domain.objects.create(account=owner.account, domain="mail.acme.example")
    custom = Mailbox.objects.create(
        account=owner.account, address="bot@mail.acme.example", domain=domain
    )
    email = Email.objects.create(
        account=owner.account,
        mailbox=custom,
        direction="outbound",
        status="pending_send_approval",
        from_address=custom.address,
        to=["x@y.example"],
        thread_id="t1",
    )
    Attachment.objects.create(
        email=email, filename="a.txt", content_type="text/plain", size=1, content=b"a"
    )
    Suppression.objects.create(account=owner.account, email_address="x@y.example", reason="manual")
    WebhookSubscription.objects.create(
        account=owner.account, url="https://h.example", events=[], signing_secret="whsec_x"
    )
    response = api("admin").delete("/v1/account")
    assert response.status_code == 200
    assert not Domain.objects.filter(domain="mail.acme.example").exists()
    assert not Email.objects.filter(pk=email.pk).exists()


def test_delete_with_stale_if_match_is_conflict(api: Any, owner: Any) -> None:
    response = api("admin").delete("/v1/account", HTTP_IF_MATCH='"stale"')
    assert_error(response, "conflict", param="If-Match")
    assert Account.objects.filter(pk=owner.account.pk).exists()
