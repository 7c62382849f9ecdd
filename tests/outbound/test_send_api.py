"""POST /send and /reply over HTTP: the accepted shape and every error the send path raises."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.plans import Plan, limits_for
from mailboxes.models import AccountSendCount, Direction, Email, EmailStatus, Suppression
from mailboxes.quotas import storage_reconcile, storage_used_bytes
from multimail.ids import new_id
from tests.conftest import Tenant, assert_error, on_annual_pro
from tests.outbound.conftest import attachment, body, sent_emails

pytestmark = pytest.mark.django_db


def test_send_is_accepted_and_sent(send: Callable[..., Any], owner: Tenant) -> None:
    response = send()
    assert response.status_code == 202, response.content
    data = response.json()
    assert data["status"] == "pending_scan"
    assert data["thread_id"]
    assert "queued" in data["message"]
    email = Email.objects.get(pk=data["id"])
    assert email.status == EmailStatus.SENT
    assert email.message_id.startswith("<")
    assert email.message_id.endswith("@acme.multimail.localhost>")
    assert email.size_bytes == len(email.markdown) + len(email.html) + len(email.text)
    assert len(mail.outbox) == 1


@pytest.mark.parametrize(
    ("overrides", "code", "param"),
    [
        ({"to": None}, "missing_parameter", "to"),
        ({"to": []}, "missing_parameter", "to"),
        ({"subject": None}, "missing_parameter", "subject"),
        ({"markdown": None}, "missing_parameter", "markdown"),
        ({"to": ["not-an-address"]}, "invalid_parameter", "to.0"),
        ({"to": [f"r{i}@example.org" for i in range(51)]}, "invalid_parameter", "to"),
        ({"cc": ["nope"]}, "invalid_parameter", "cc.0"),
        ({"subject": "s" * 999}, "invalid_parameter", "subject"),
        ({"markdown": "é" * 140_000}, "invalid_parameter", "markdown"),
        ({"gate_timing": "whenever"}, "invalid_parameter", "gate_timing"),
        ({"send_at": "2030-01-01 10:00"}, "invalid_parameter", "send_at"),
        ({"send_at": "2020-01-01T10:00:00Z"}, "validation_error", "send_at"),
        ({"attachments": [{"content_base64": "aGk=", "content_type": "text/plain"}]},
         "missing_parameter", "attachments.0.name"),
        ({"attachments": [{"name": "a.txt", "content_type": "text/plain"}]},
         "missing_parameter", "attachments.0.content_base64"),
        ({"attachments": [{"name": "a.txt", "content_base64": "aGk="}]},
         "missing_parameter", "attachments.0.content_type"),
        ({"attachments": [attachment() | {"content_base64": "!!!"}]},
         "invalid_parameter", "attachments.0.content_base64"),
    ],
)  # fmt: skip
def test_send_validation(
    send: Callable[..., Any], overrides: dict[str, Any], code: str, param: str
) -> None:
    payload = body(**overrides)
    for key, value in overrides.items():
        if value is None:
            payload.pop(key, None)
    assert_error(send(payload=payload), code, param=param)
    assert not Email.objects.exists()


def test_attachments_over_10_mb(send: Callable[..., Any]) -> None:
    big = attachment("big.bin", b"\0" * (10 * 1024 * 1024 + 1), "application/octet-stream")
    assert_error(
        send(attachments=[big]),
        "payload_too_large",
        param="attachments",
        limit_bytes=10 * 1024 * 1024,
    )


def test_idempotency_key_replays(send: Callable[..., Any]) -> None:
    first = send(idempotency_key="order-42").json()
    again = send(idempotency_key="order-42", subject="changed")
    assert again.status_code == 200
    assert again.json() == {
        "id": first["id"],
        "status": "already_sent",
        "idempotent": True,
        "thread_id": first["thread_id"],
    }
    assert Email.objects.count() == 1


def test_expired_idempotency_key_sends_again(send: Callable[..., Any]) -> None:
    first = send(idempotency_key="k1").json()
    Email.objects.filter(pk=first["id"]).update(received_at=timezone.now() - timedelta(hours=25))
    again = send(idempotency_key="k1")
    assert again.status_code == 202
    assert again.json()["id"] != first["id"]


def test_duplicate_within_60_seconds(send: Callable[..., Any]) -> None:
    first = send().json()
    assert_error(send(), "duplicate_email", original_id=first["id"])
    Email.objects.filter(pk=first["id"]).update(received_at=timezone.now() - timedelta(seconds=61))
    assert send().status_code == 202


def test_suppressed_recipient(send: Callable[..., Any], owner: Tenant) -> None:
    Suppression.objects.create(
        account=owner.account, email_address="gone@example.org", reason="hard_bounce"
    )
    response = send(to=["ok@example.org"], cc=["Gone@Example.org"])
    assert_error(response, "recipient_suppressed", suppressed=["gone@example.org"])


def test_read_only_mailbox(send: Callable[..., Any], owner: Tenant) -> None:
    owner.mailbox.oversight_mode = "read_only"
    owner.mailbox.save()
    assert_error(
        send(),
        "mailbox_read_only",
        upgrade_path=["gated_all", "gated_send", "monitored", "autonomous"],
    )


def test_sending_disabled(send: Callable[..., Any], owner: Tenant) -> None:
    owner.account.sending_disabled = True
    owner.account.sending_disabled_reason = "bounce rate over 5%"
    owner.account.save()
    assert_error(send(), "sending_disabled", reason="bounce rate over 5%")


def test_scheduling_disabled(send: Callable[..., Any], owner: Tenant) -> None:
    owner.mailbox.scheduling_enabled = False
    owner.mailbox.save()
    later = (timezone.now() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert_error(send(send_at=later), "validation_error", param="send_at")


def test_monthly_quota(send: Callable[..., Any], owner: Tenant, monkeypatch: Any) -> None:
    tight = dataclasses.replace(limits_for(Plan.STARTER), monthly_email_quota=2)
    monkeypatch.setattr("mailboxes.quotas.limits_for", lambda plan: tight)
    owner.mailbox.created_at = timezone.now() - timedelta(days=30)
    owner.mailbox.save()
    sent_emails(owner, 2)
    response = send()
    error = assert_error(response, "monthly_quota_exceeded", quota=2, used=2)
    assert error["resets_at"].endswith("Z")
    assert int(response["Retry-After"]) > 60


def test_warmup_cap(send: Callable[..., Any], owner: Tenant) -> None:
    sent_emails(owner, 20)  # day 1 of the mailbox's life: 20 a day
    response = send()
    assert_error(response, "warmup_limit_exceeded", warmup_stage=1, daily_sent=20, daily_limit=20)
    assert response["X-Warmup-Stage"] == "1"
    assert response["X-Warmup-Daily-Limit"] == "20"
    assert 1 <= int(response["Retry-After"]) <= 86400


def test_warmup_rises_with_age(send: Callable[..., Any], owner: Tenant) -> None:
    owner.mailbox.created_at = timezone.now() - timedelta(days=1)
    owner.mailbox.save()
    sent_emails(owner, 20)
    assert send().status_code == 202  # day 2 allows 40


def test_storage_quota(send: Callable[..., Any], owner: Tenant, monkeypatch: Any) -> None:
    tiny = dataclasses.replace(limits_for(Plan.STARTER), max_storage_bytes=100)
    monkeypatch.setattr("mailboxes.quotas.limits_for", lambda plan: tiny)
    sent_emails(owner, 1, size_bytes=90)
    storage_reconcile(account_id=owner.account.pk)  # rows written around the services
    assert_error(send(), "storage_quota_exceeded", used_bytes=90, limit_bytes=100)


def test_storage_quota_counts_the_email_that_fills_it(
    send: Callable[..., Any], owner: Tenant, monkeypatch: Any
) -> None:
    markdown = "x" * 40
    tiny = dataclasses.replace(limits_for(Plan.STARTER), max_storage_bytes=90 + len(markdown))
    monkeypatch.setattr("mailboxes.quotas.limits_for", lambda plan: tiny)
    sent_emails(owner, 1, size_bytes=90)
    storage_reconcile(account_id=owner.account.pk)
    # Exactly full is allowed; the stored bytes then include the rendered body.
    assert send(markdown=markdown).status_code == 202
    used = storage_used_bytes(account=owner.account)
    assert used == 90 + sum(e.size_bytes for e in Email.objects.filter(subject="Quarterly numbers"))
    assert_error(
        send(markdown="y"),
        "storage_quota_exceeded",
        used_bytes=used,
        limit_bytes=tiny.max_storage_bytes,
    )


def test_needs_send_scope(api: Callable[..., APIClient], owner: Tenant) -> None:
    response = api("read").post(f"/v1/mailboxes/{owner.mailbox.pk}/send", body(), format="json")
    assert_error(response, "insufficient_permissions", required_scope="send")


def test_other_tenants_mailbox(send: Callable[..., Any], other: Tenant) -> None:
    response = send(f"/v1/mailboxes/{other.mailbox.pk}/send")
    assert_error(response, "not_found", resource="mailbox")
    assert not Email.objects.exists()


def test_deleted_mailbox_cannot_send(send: Callable[..., Any], owner: Tenant) -> None:
    owner.mailbox.is_active = False
    owner.mailbox.save()
    assert_error(send(), "not_found", resource="mailbox")


# --- reply -------------------------------------------------------------------------------


def _inbound(owner: Tenant, **fields: Any) -> Email:
    defaults: dict[str, Any] = {
        "account": owner.account,
        "mailbox": owner.mailbox,
        "direction": Direction.INBOUND,
        "status": EmailStatus.UNREAD,
        "from_address": "Client Person <client@example.org>",
        "to": [owner.mailbox.address],
        "subject": "Pricing question",
        "markdown": "How much?",
        "message_id": "<q1@example.org>",
        "references": "<q0@example.org>",
        "thread_id": new_id(),
    }
    defaults.update(fields)
    return Email.objects.create(**defaults)


def test_reply_threads_and_sends(send: Callable[..., Any], owner: Tenant) -> None:
    original = _inbound(owner)
    url = f"/v1/mailboxes/{owner.mailbox.pk}/reply/{original.pk}"
    response = send(url, payload={"markdown": "It is free."})
    assert response.status_code == 202, response.content
    assert response.json()["thread_id"] == original.thread_id
    reply = Email.objects.get(pk=response.json()["id"])
    assert reply.to == ["client@example.org"]
    assert reply.subject == "Re: Pricing question"
    assert reply.in_reply_to == "<q1@example.org>"
    assert reply.references == "<q0@example.org> <q1@example.org>"
    message = mail.outbox[-1].message()
    assert message["In-Reply-To"] == "<q1@example.org>"
    assert "<q1@example.org>" in message["References"]


def test_reply_uses_reply_to_header(send: Callable[..., Any], owner: Tenant) -> None:
    original = _inbound(owner, headers={"Reply-To": "Desk <desk@example.org>"}, subject="Re: x")
    url = f"/v1/mailboxes/{owner.mailbox.pk}/reply/{original.pk}"
    reply = Email.objects.get(pk=send(url, payload={"markdown": "ok"}).json()["id"])
    assert reply.to == ["desk@example.org"]
    assert reply.subject == "Re: x"


def test_reply_errors(send: Callable[..., Any], owner: Tenant, other: Tenant) -> None:
    foreign = _inbound(other, mailbox=other.mailbox, account=other.account)
    url = f"/v1/mailboxes/{owner.mailbox.pk}/reply/{foreign.pk}"
    assert_error(send(url, payload={"markdown": "x"}), "not_found", resource="email")
    original = _inbound(owner)
    url = f"/v1/mailboxes/{owner.mailbox.pk}/reply/{original.pk}"
    assert_error(send(url, payload={"cc": []}), "missing_parameter", param="markdown")
    first = send(url, payload={"markdown": "same"}).json()
    assert_error(
        send(url, payload={"markdown": "same"}), "duplicate_email", original_id=first["id"]
    )
    replay = send(url, payload={"markdown": "k", "idempotency_key": "r1"}).json()
    again = send(url, payload={"markdown": "k", "idempotency_key": "r1"})
    assert again.status_code == 200
    assert again.json()["id"] == replay["id"]


def test_reply_to_held_inbound_is_not_found(send: Callable[..., Any], owner: Tenant) -> None:
    held = _inbound(owner, status=EmailStatus.PENDING_INBOUND_APPROVAL)
    url = f"/v1/mailboxes/{owner.mailbox.pk}/reply/{held.pk}"
    assert_error(send(url, payload={"markdown": "x"}), "not_found", resource="email")


def test_reply_without_a_sender_address(send: Callable[..., Any], owner: Tenant) -> None:
    original = _inbound(owner, from_address="undisclosed-recipients:;")
    url = f"/v1/mailboxes/{owner.mailbox.pk}/reply/{original.pk}"
    assert_error(send(url, payload={"markdown": "x"}), "validation_error", param="email_id")


def _send_statements(sender: APIClient, owner: Tenant, capture: Any, **overrides: Any) -> Any:
    """The statements of one send, the pipeline it enqueues left out."""
    with capture(execute=False), CaptureQueriesContext(connection) as queries:
        response = sender.post(
            f"/v1/mailboxes/{owner.mailbox.pk}/send", body(**overrides), format="json"
        )
    return response, [q["sql"] for q in queries.captured_queries]


def test_the_period_and_the_suppression_list_are_read_with_the_locks(
    sender: APIClient, owner: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    """A send's quota period (the subscription, on paid plans) and its recipients'
    suppression come with the locking statement: no statement of their own."""
    period_start = timezone.now() - timedelta(days=3)
    on_annual_pro(owner.account, period_start=period_start)
    response, statements = _send_statements(sender, owner, django_capture_on_commit_callbacks)
    assert response.status_code == 202, response.content
    (lock,) = [sql for sql in statements if "FOR NO KEY UPDATE" in sql]
    assert '"billing_subscription"' in lock
    assert '"mailboxes_suppression"' in lock
    assert not [
        sql
        for sql in statements
        if sql is not lock and ('"billing_subscription"' in sql or '"mailboxes_suppression"' in sql)
    ]
    # The quota counts from the subscription's period, as current_period says.
    assert AccountSendCount.objects.get(account=owner.account).since == period_start
    Suppression.objects.create(
        account=owner.account, email_address="gone@example.org", reason="hard_bounce"
    )
    refused, statements = _send_statements(
        sender, owner, django_capture_on_commit_callbacks, to=["Gone@example.org"]
    )
    assert_error(refused, "recipient_suppressed", suppressed=["gone@example.org"])
    # Only a refusal reads which recipients are suppressed.
    assert len([sql for sql in statements if '"mailboxes_suppression"' in sql]) == 2
