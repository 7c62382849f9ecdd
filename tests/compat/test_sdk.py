"""MultiMail's own Python SDK, unchanged, against a live server at the compat base URL.

Every SDK method whose request and response match the reference is called over real HTTP,
and so are its errors: the SDK builds its exceptions from the string ``error`` field and the
``Retry-After`` header, so their text and ``retry_after`` are what an agent using it sees.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from mailboxes.models import Direction, Email, EmailStatus, Mailbox, Suppression
from mailboxes.services import domains
from tests.compat.sdk import (
    AsyncMultiMail,
    AuthenticationError,
    MultiMail,
    MultiMailError,
    NotFoundError,
    RateLimitError,
    ValidationError,
)
from tests.conftest import Tenant, key_for, make_tenant, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

SDK = Callable[..., Any]
FILE = b"quarterly numbers\n" * 20


def outbound_sent_today(mailbox: Mailbox, count: int, *, at: Any = None) -> None:
    """``count`` emails already sent by the mailbox (they count against warm-up and quota)."""
    moment = at or timezone.now()
    Email.objects.bulk_create(
        Email(
            account=mailbox.account,
            mailbox=mailbox,
            direction=Direction.OUTBOUND,
            status=EmailStatus.SENT,
            from_address=mailbox.address,
            to=[f"someone{index}@outside.example"],
            subject=f"Earlier {index}",
            markdown="Earlier mail",
            received_at=moment,
        )
        for index in range(count)
    )


def test_account_usage_and_audit_log(owner: Tenant, sdk_for: SDK) -> None:
    client = sdk_for(owner.account, "admin")
    account = client.get_account()
    assert account["id"] == owner.account.pk
    assert account["slug"] == "acme"
    client.update_account(name="Acme Renamed")
    assert client.get_account()["name"] == "Acme Renamed"
    usage = client.get_usage()
    assert {"emails_sent", "emails_received", "api_calls"} <= usage.keys()
    entries = client.get_audit_log()
    assert any(entry["action"].startswith("account") for entry in entries), entries


def test_mailboxes(owner: Tenant, sdk_for: SDK) -> None:
    client = sdk_for(owner.account, "admin")
    assert [item["id"] for item in client.list_mailboxes()] == [owner.mailbox.pk]
    # The SDK sends the local part as "address" and an oversight_mode the spec ignores.
    created = client.create_mailbox("sales", "Sales desk", oversight_mode="autonomous")
    assert created["address"] == "sales@acme.multimail.localhost"
    assert created["oversight_mode"] == "gated_send"
    client.update_mailbox(created["id"], display_name="Sales")
    listed = {item["id"]: item for item in client.list_mailboxes()}
    assert listed[created["id"]]["display_name"] == "Sales"
    assert client.delete_mailbox(created["id"]) is None
    assert [item["id"] for item in client.list_mailboxes()] == [owner.mailbox.pk]


def test_send_read_download_tag_reply_thread_and_cancel(owner: Tenant, sdk_for: SDK) -> None:
    client = sdk_for(owner.account, "read", "send", "admin")
    desk = client.create_mailbox("desk", "Desk")
    client.update_mailbox(desk["id"], oversight_mode="gated_send")
    attachment = {
        "name": "numbers.txt",
        "content_base64": base64.b64encode(FILE).decode(),
        "content_type": "text/plain",
    }
    sent = client.send_email(
        owner.mailbox.pk,
        to=[desk["address"]],
        subject="Numbers",
        markdown="The **numbers** are attached.",
        attachments=[attachment],
        idempotency_key="numbers-1",
    )
    assert sent["status"] == "pending_scan"
    assert sent["thread_id"]

    page = wait_for(lambda: client.list_emails(desk["id"], direction="inbound")["emails"])
    assert "cursor" in client.list_emails(desk["id"], limit=5, offset=0)
    inbound = page[0]
    assert inbound["subject"] == "Numbers"
    detail = client.get_email(desk["id"], inbound["id"])
    assert "**numbers**" in detail["markdown"]
    assert [item["name"] for item in detail["attachments"]] == ["numbers.txt"]
    assert client.download_attachment(desk["id"], inbound["id"], "numbers.txt") == FILE

    assert client.set_tags(desk["id"], inbound["id"], {"priority": "high"}) == {
        "tags": {"priority": "high"}
    }
    assert client.get_tags(desk["id"], inbound["id"]) == {"tags": {"priority": "high"}}
    assert client.delete_tag(desk["id"], inbound["id"], "priority") is None
    assert client.get_tags(desk["id"], inbound["id"]) == {"tags": {}}

    # The desk is gated: its reply is held, so it can be cancelled.
    reply = client.reply_email(desk["id"], inbound["id"], markdown="Thanks, received.")
    assert reply["status"] == "pending_scan"
    thread = client.get_thread(desk["id"], inbound["thread_id"])
    assert {item["id"] for item in thread["emails"]} == {inbound["id"], reply["id"]}
    wait_for(lambda: client.get_email(desk["id"], reply["id"])["status"] == "pending_send_approval")
    assert client.cancel_email(desk["id"], reply["id"]) == {
        "id": reply["id"],
        "status": "cancelled",
    }


def test_pending_queue_and_decision(owner: Tenant, sdk_for: SDK) -> None:
    Mailbox.objects.filter(pk=owner.mailbox.pk).update(oversight_mode="gated_send")
    agent = sdk_for(owner.account, "send", "read")
    operator = sdk_for(owner.account, "oversight")
    sent = agent.send_email(
        owner.mailbox.pk, to=["client@outside.example"], subject="Offer", markdown="Our offer."
    )
    # The SDK reads the queue under "pending"; the spec's "emails" is there too.
    pending = wait_for(operator.list_pending)
    assert [item["id"] for item in pending] == [sent["id"]]
    decided = operator.decide(sent["id"], "approve", reason="Checked the figures")
    assert decided["status"] in ("approved", "approved_and_sent")
    assert operator.list_pending() == []


def test_contacts(owner: Tenant, sdk_for: SDK) -> None:
    client = sdk_for(owner.account, "admin", "send")
    contact = client.add_contact("ada@example.com", "Ada Lovelace", tags=["vip"])
    assert contact["email"] == "ada@example.com"
    assert [item["id"] for item in client.list_contacts(q="ada")] == [contact["id"]]
    assert client.list_contacts(q="nobody") == []
    client.delete_contact(contact["id"])
    assert client.list_contacts() == []


def test_api_keys(owner: Tenant, sdk_for: SDK) -> None:
    client = sdk_for(owner.account, "admin")
    created = client.create_api_key("Reporting", ["read"])
    assert created["api_key"].startswith("mm_live_")
    assert created["scopes"] == ["read"]
    assert created["id"] in {item["id"] for item in client.list_api_keys()}
    client.revoke_api_key(created["id"])
    with pytest.raises(AuthenticationError):
        MultiMail(created["api_key"], base_url=client.base_url).get_account()


def test_webhooks(owner: Tenant, sdk_for: SDK, public_dns: None) -> None:
    client = sdk_for(owner.account, "admin")
    created = client.create_webhook("https://hooks.example.com/mail", ["message.received"])
    assert created["signing_secret"].startswith("whsec_")
    # The SDK reads the list under "webhooks"; the spec's "subscriptions" is there too.
    assert [item["id"] for item in client.list_webhooks()] == [created["id"]]
    client.delete_webhook(created["id"])
    assert client.list_webhooks() == []


def test_domains(db: Any, sdk_for: SDK, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(domains, "dns_lookup", lambda name, rdtype: [])
    tenant = make_tenant("initech", plan="pro")
    client = sdk_for(tenant.account, "admin")
    added = client.add_domain("mail.initech.example")
    assert added["status"] == "pending"
    assert [item["id"] for item in client.list_domains()] == [added["id"]]
    verified = client.verify_domain(added["id"])
    assert verified["status"] == "pending"
    assert verified["dkim_verified"] is False
    client.delete_domain(added["id"])
    assert client.list_domains() == []


def test_suppressions(owner: Tenant, sdk_for: SDK) -> None:
    Suppression.objects.create(
        account=owner.account, email_address="gone@example.com", reason="unsubscribe"
    )
    client = sdk_for(owner.account, "admin")
    assert [item["email_address"] for item in client.list_suppressions()] == ["gone@example.com"]
    client.remove_suppression("gone@example.com")
    assert client.list_suppressions() == []


def test_delete_account(db: Any, sdk_for: SDK) -> None:
    tenant = make_tenant("umbrella")
    client = sdk_for(tenant.account, "admin")
    client.delete_account()
    with pytest.raises(AuthenticationError):
        client.get_account()


# --- errors, as the SDK raises them ------------------------------------------------------


def test_not_found_carries_the_message(owner: Tenant, sdk_for: SDK) -> None:
    client = sdk_for(owner.account, "read", "send")
    with pytest.raises(NotFoundError) as caught:
        client.get_email(owner.mailbox.pk, "01AAAAAAAAAAAAAAAAAAAAAAAA")
    assert str(caught.value) == "That email does not exist in this account."
    assert caught.value.status_code == 404
    assert caught.value.body["code"] == "not_found"
    assert caught.value.body["resource"] == "email"
    with pytest.raises(NotFoundError) as caught:
        client.send_email("nope", to=["a@example.com"], subject="Hi", markdown="Hi")
    assert str(caught.value) == "That mailbox does not exist in this account."


def test_authentication_errors(owner: Tenant, base_url: str) -> None:
    with pytest.raises(AuthenticationError) as caught:
        MultiMail("mm_live_" + "x" * 40, base_url=base_url).list_mailboxes()
    assert caught.value.body["code"] == "invalid_api_key"
    assert isinstance(caught.value.args[0], str)
    assert "does not exist or has been revoked" in str(caught.value)


def test_scope_refusal_names_the_scope(owner: Tenant, sdk_for: SDK) -> None:
    client = sdk_for(owner.account, "read")
    with pytest.raises(MultiMailError) as caught:
        client.create_api_key("More power", ["admin"])
    assert caught.value.status_code == 403
    assert caught.value.body["code"] == "insufficient_permissions"
    assert caught.value.body["required_scope"] == "admin"
    assert "admin" in str(caught.value)


def test_validation_error(owner: Tenant, sdk_for: SDK) -> None:
    client = sdk_for(owner.account, "admin")
    with pytest.raises(ValidationError) as caught:
        client.create_api_key("Self approver", ["send", "oversight"])
    assert caught.value.body["code"] == "validation_error"
    assert "oversight" in str(caught.value)


def test_bad_input_is_a_plain_error_with_its_param(owner: Tenant, sdk_for: SDK) -> None:
    client = sdk_for(owner.account, "send")
    with pytest.raises(MultiMailError) as caught:
        client.send_email(owner.mailbox.pk, to=["a@example.com"], subject="", markdown="Hi")
    assert caught.value.status_code == 400
    assert caught.value.body["code"] == "missing_parameter"
    assert caught.value.body["param"] == "subject"
    assert str(caught.value) == "The subject field is required. Include it in the request body."


def test_rate_limit_has_retry_after(owner: Tenant, sdk_for: SDK) -> None:
    client = sdk_for(owner.account, "read")
    with override_settings(API_RATE_LIMIT_READ_PER_MINUTE=2):
        client.list_mailboxes()
        client.list_mailboxes()
        with pytest.raises(RateLimitError) as caught:
            client.list_mailboxes()
    assert caught.value.retry_after is not None
    assert caught.value.retry_after >= 1
    assert caught.value.body["code"] == "rate_limit_exceeded"
    assert caught.value.body["limit_type"] == "read"
    assert "read budget of 2 requests" in str(caught.value)


def test_warm_up_limit_details_are_at_the_top_level(owner: Tenant, sdk_for: SDK) -> None:
    outbound_sent_today(owner.mailbox, 20)
    client = sdk_for(owner.account, "send")
    with pytest.raises(RateLimitError) as caught:
        client.send_email(owner.mailbox.pk, to=["a@example.com"], subject="Hi", markdown="Hi")
    body = caught.value.body
    assert body["code"] == "warmup_limit_exceeded"
    assert (body["warmup_stage"], body["daily_sent"], body["daily_limit"]) == (1, 20, 20)
    assert body["hint"]
    assert caught.value.retry_after >= 1
    assert "warm-up" in str(caught.value)


def test_monthly_quota_message_says_quota(owner: Tenant, sdk_for: SDK) -> None:
    # Past its warm-up, with the Starter plan's 200 monthly sends used.
    Mailbox.objects.filter(pk=owner.mailbox.pk).update(
        created_at=timezone.now() - timedelta(days=30)
    )
    outbound_sent_today(owner.mailbox, 200)
    client = sdk_for(owner.account, "send")
    with pytest.raises(RateLimitError) as caught:
        client.send_email(owner.mailbox.pk, to=["a@example.com"], subject="Hi", markdown="Hi")
    assert caught.value.body["code"] == "monthly_quota_exceeded"
    assert "quota" in str(caught.value)
    assert (caught.value.body["quota"], caught.value.body["used"]) == (200, 200)
    assert caught.value.retry_after >= 1


def test_async_client(owner: Tenant, base_url: str) -> None:
    _, raw = key_for(owner.account, "read", "send")

    async def calls() -> tuple[list[dict[str, Any]], str]:
        async with AsyncMultiMail(raw, base_url=base_url) as client:
            mailboxes = await client.list_mailboxes()
            try:
                await client.get_thread(owner.mailbox.pk, "01AAAAAAAAAAAAAAAAAAAAAAAA")
            except NotFoundError as error:
                return mailboxes, str(error)
        raise AssertionError("no NotFoundError")

    mailboxes, message = asyncio.run(calls())
    assert [item["id"] for item in mailboxes] == [owner.mailbox.pk]
    assert "thread" in message
