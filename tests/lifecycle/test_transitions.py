"""The lifecycle's table: what it allows is written with its effects, what it refuses is
never written, and a lost compare-and-set changes nothing."""

from __future__ import annotations

from datetime import timedelta
from itertools import product
from typing import Any

import pytest
from django.utils import timezone

from accounts.actors import Actor
from accounts.models import AuditEntry
from billing.models import UsageDaily, UsageEventType
from mailboxes import lifecycle
from mailboxes.lifecycle import FIRST_STATUSES, TRANSITIONS, TransitionRefused
from mailboxes.models import Direction, Email, EmailStatus, WebhookDelivery, WebhookEvent
from tests.conftest import Tenant
from tests.oversight.conftest import make_email

S = EmailStatus
FINAL = {S.SENT, S.REJECTED, S.CANCELLED}
OUTBOUND_ONLY = {
    S.PENDING_SCAN,
    S.SCHEDULED,
    S.PENDING_SEND_APPROVAL,
    S.SENDING,
    S.SENT,
    S.SEND_FAILED,
}
INBOUND_ONLY = {
    S.PENDING_INBOUND_APPROVAL,
    S.UNREAD,
    S.READ,
    S.ARCHIVED,
    S.DELETED,
    S.SPAM_FLAGGED,
    S.SPAM_QUARANTINED,
}


def _row(email: Email) -> dict[str, Any]:
    return Email.objects.filter(pk=email.pk).values().get()


@pytest.fixture
def hooked(owner: Tenant) -> Tenant:
    """The owner with webhook URLs on its mailbox, so every event leaves a delivery row."""
    owner.mailbox.webhook_url = "https://hooks.example/mail"
    owner.mailbox.oversight_webhook_url = "https://hooks.example/oversight"
    owner.mailbox.save()
    return owner


def _set_status(email: Email, status: str) -> None:
    """Test setup only: put a stored email in ``status`` directly."""
    email.status = status
    email.save(update_fields=["status"])


# --- The table ---------------------------------------------------------------------------


def test_every_status_either_moves_on_or_is_final() -> None:
    assert set(TRANSITIONS) | FINAL == set(S)
    assert not set(TRANSITIONS) & FINAL
    for old, targets in TRANSITIONS.items():
        assert old not in targets, f"{old} moves to itself"
        assert targets <= set(S)


def test_directions_never_mix() -> None:
    """Outbound statuses lead only to outbound or shared ones, and the same for inbound."""
    for old, targets in TRANSITIONS.items():
        if old in OUTBOUND_ONLY:
            assert not targets & INBOUND_ONLY, old
        if old in INBOUND_ONLY:
            assert not targets & OUTBOUND_ONLY, old


def test_decisions_leave_only_held_statuses() -> None:
    """Approved and rejected mail was held first: only a held email reaches a decision's
    statuses from a pending state (rejected also ends a scan or a read-only mailbox)."""
    held = {S.PENDING_SEND_APPROVAL, S.PENDING_INBOUND_APPROVAL}
    for old, targets in TRANSITIONS.items():
        if S.SENDING in targets or S.SCHEDULED in targets:
            assert old in {S.PENDING_SCAN, S.SCHEDULED, *held}
    assert all(lifecycle.allowed(status, S.REJECTED) for status in held)
    assert not lifecycle.allowed(S.SENDING, S.REJECTED)
    assert not lifecycle.allowed(S.SENT, S.SENDING)


def test_first_statuses() -> None:
    assert FIRST_STATUSES[Direction.OUTBOUND] == {S.PENDING_SCAN}
    assert S.PENDING_INBOUND_APPROVAL in FIRST_STATUSES[Direction.INBOUND]
    assert S.SENT not in FIRST_STATUSES[Direction.INBOUND]


# --- Refused changes are never written ---------------------------------------------------


def test_a_refused_transition_raises_and_writes_nothing(owner: Tenant) -> None:
    email = make_email(owner.mailbox)
    refused = [
        (old, new) for old, new in product(S, S) if old == new or not lifecycle.allowed(old, new)
    ]
    assert len(refused) > 150  # most pairs: the table is a short list of what may happen
    for old, new in refused:
        _set_status(email, old)
        before = _row(email)
        with pytest.raises(TransitionRefused):
            lifecycle.email_move(email, to=new, failure_reason="must not be written")
        assert _row(email) == before, (old, new)
        assert email.status == old


def test_a_change_with_effects_cannot_skip_them(owner: Tenant) -> None:
    """To sent, to held, to send_failed, the retry, and decisions have their own functions:
    email_move refuses them."""
    email = make_email(owner.mailbox)
    for old, new in [
        (S.SENDING, S.SENT),
        (S.PENDING_SCAN, S.PENDING_SEND_APPROVAL),
        (S.PENDING_SEND_APPROVAL, S.SENDING),
        (S.PENDING_SEND_APPROVAL, S.REJECTED),
        (S.SENDING, S.SEND_FAILED),
        (S.PENDING_SCAN, S.SEND_FAILED),
        (S.SEND_FAILED, S.PENDING_SCAN),
    ]:
        assert lifecycle.allowed(old, new)
        _set_status(email, old)
        before = _row(email)
        with pytest.raises(TransitionRefused, match="side effects"):
            lifecycle.email_move(email, to=new)
        assert _row(email) == before


def test_a_new_email_must_start_in_a_first_status(owner: Tenant) -> None:
    fields = {
        "account": owner.account,
        "mailbox": owner.mailbox,
        "from_address": owner.mailbox.address,
        "thread_id": "t",
    }
    with pytest.raises(TransitionRefused):
        lifecycle.email_create(direction=Direction.OUTBOUND, status=S.SENT, **fields)
    with pytest.raises(TransitionRefused):
        lifecycle.email_create(direction=Direction.INBOUND, status=S.PENDING_SCAN, **fields)
    assert not Email.objects.exists()
    email = lifecycle.email_create(direction=Direction.OUTBOUND, status=S.PENDING_SCAN, **fields)
    assert _row(email)["status"] == S.PENDING_SCAN


# --- Allowed changes ---------------------------------------------------------------------


def test_an_allowed_move_is_a_compare_and_set(owner: Tenant) -> None:
    email = make_email(owner.mailbox)
    stale = Email.objects.get(pk=email.pk)
    earlier = timezone.now() - timedelta(hours=1)
    Email.objects.filter(pk=email.pk).update(status_changed_at=earlier)

    assert lifecycle.email_move(email, to=S.REJECTED, failure_reason="content_rejected: x")
    row = _row(email)
    assert row["status"] == S.REJECTED == email.status
    assert row["failure_reason"] == "content_rejected: x" == email.failure_reason
    assert row["status_changed_at"] == email.status_changed_at > earlier

    # A second writer that loaded the email before the change loses, and writes nothing.
    assert not lifecycle.email_move(stale, to=S.SCHEDULED)
    assert _row(email) == row
    assert stale.status == S.PENDING_SCAN


def test_a_move_from_several_statuses(owner: Tenant) -> None:
    email = make_email(owner.mailbox, direction=Direction.INBOUND, status=S.READ)
    reportable = (S.UNREAD, S.READ, S.SPAM_FLAGGED)
    assert lifecycle.email_move(email, to=S.SPAM_QUARANTINED, from_=reportable)
    assert not lifecycle.email_move(email, to=S.SPAM_QUARANTINED, from_=reportable)
    assert _row(email)["status"] == S.SPAM_QUARANTINED


def test_cancels_move_only_what_may_be_cancelled(owner: Tenant) -> None:
    queued = make_email(owner.mailbox, status=S.SCHEDULED)
    sending = make_email(owner.mailbox, status=S.SENDING)
    held_inbound = make_email(
        owner.mailbox, direction=Direction.INBOUND, status=S.PENDING_INBOUND_APPROVAL
    )
    assert not lifecycle.email_cancel(mailbox=owner.mailbox, email_id=sending.pk)
    assert lifecycle.email_cancel(mailbox=owner.mailbox, email_id=queued.pk)
    assert not lifecycle.email_cancel(mailbox=owner.mailbox, email_id=queued.pk)
    # A deleted mailbox cancels its queued outbound mail, not what it received.
    again = make_email(owner.mailbox, status=S.PENDING_SEND_APPROVAL)
    assert lifecycle.mailbox_cancel_queued(mailbox=owner.mailbox) == 1
    statuses = dict(Email.objects.values_list("pk", "status"))
    assert statuses == {
        queued.pk: S.CANCELLED,
        sending.pk: S.SENDING,
        held_inbound.pk: S.PENDING_INBOUND_APPROVAL,
        again.pk: S.CANCELLED,
    }
    assert _row(again)["failure_reason"] == "mailbox deleted"


def test_a_decision_is_announced_counted_and_audited(hooked: Tenant) -> None:
    owner = hooked
    email = make_email(owner.mailbox, status=S.PENDING_SEND_APPROVAL)
    actor = Actor.for_operator(owner.operator)
    assert lifecycle.email_record_decision(
        email=email, to=S.REJECTED, actor=actor, version="v1", reason="no", request_id="req_1"
    )
    row = _row(email)
    assert row["status"] == S.REJECTED
    assert row["approved_by"] == actor.display
    assert row["decision_reason"] == "no"
    assert row["approved_at"] == row["status_changed_at"]
    assert row["approved_version"] == "v1"
    [event] = WebhookDelivery.objects.filter(event_type=WebhookEvent.OVERSIGHT_REJECTED)
    assert event.payload["data"]["decided_via"] == "operator"
    entry = AuditEntry.objects.get(action="email.rejected", resource_id=email.pk)
    assert entry.request_id == "req_1"
    usage = UsageDaily.objects.get(
        account=owner.account, event_type=UsageEventType.OVERSIGHT_ACTIONS
    )
    assert usage.count == 1


def test_a_lost_decision_writes_and_announces_nothing(hooked: Tenant) -> None:
    owner = hooked
    email = make_email(owner.mailbox, status=S.PENDING_SEND_APPROVAL)
    Email.objects.filter(pk=email.pk).update(status=S.CANCELLED)  # the agent cancelled first
    before = _row(email)
    won = lifecycle.email_record_decision(
        email=email, to=S.SENDING, actor=Actor.for_operator(owner.operator), version="v1"
    )
    assert not won
    assert _row(email) == before
    assert not WebhookDelivery.objects.exists()
    assert not AuditEntry.objects.filter(resource_type="email").exists()


def test_send_failed_is_a_status_only_the_operator_retries() -> None:
    assert TRANSITIONS[S.SEND_FAILED] == {S.PENDING_SCAN}
    # Every status an outbound email passes through before it leaves can fail for good.
    for status in (S.PENDING_SCAN, S.SCHEDULED, S.SENDING):
        assert lifecycle.allowed(status, S.SEND_FAILED), status


def test_a_failure_is_announced_and_the_operator_told(hooked: Tenant) -> None:
    from oversight.models import OperatorNotification

    email = make_email(hooked.mailbox, status=S.SENDING)
    assert lifecycle.email_fail(email=email, reason="message_unbuildable: bad header")
    row = _row(email)
    assert row["status"] == S.SEND_FAILED
    assert row["failure_reason"] == "message_unbuildable: bad header"
    [event] = WebhookDelivery.objects.filter(event_type=WebhookEvent.MESSAGE_SEND_FAILED)
    assert event.url == "https://hooks.example/mail"
    assert event.payload["data"]["failure_reason"] == "message_unbuildable: bad header"
    [notice] = OperatorNotification.objects.filter(email=email)
    assert notice.kind == OperatorNotification.Kind.SEND_FAILED
    assert notice.subject == f"Not sent: {email.subject}"
    # Lost to a concurrent change (it was sent meanwhile): nothing more.
    sent_meanwhile = make_email(hooked.mailbox, status=S.SENDING)
    Email.objects.filter(pk=sent_meanwhile.pk).update(status=S.SENT)
    assert not lifecycle.email_fail(email=sent_meanwhile, reason="x")
    assert OperatorNotification.objects.count() == 1


def test_a_retry_clears_the_decision_and_is_audited(owner: Tenant) -> None:
    email = make_email(owner.mailbox, status=S.SEND_FAILED)
    Email.objects.filter(pk=email.pk).update(
        failure_reason="sending_disabled: x",
        approved_at=timezone.now(),
        approved_by="operator:ops@acme.example",
        approved_version="v1",
        send_attempts=3,
    )
    email.refresh_from_db()
    actor = Actor.for_operator(owner.operator)
    assert lifecycle.email_retry(email=email, actor=actor, request_id="req_2")
    row = _row(email)
    assert row["status"] == S.PENDING_SCAN
    assert (row["failure_reason"], row["approved_version"], row["send_attempts"]) == ("", "", 0)
    assert row["approved_at"] is None
    assert row["approved_by"] is None
    entry = AuditEntry.objects.get(action="email.retried", resource_id=email.pk)
    assert entry.metadata["failure_reason"] == "sending_disabled: x"
    assert entry.request_id == "req_2"
    assert not lifecycle.email_retry(email=email, actor=actor)  # a second click


def test_sent_is_announced_once(hooked: Tenant) -> None:
    email = make_email(hooked.mailbox, status=S.SENDING)
    assert lifecycle.email_mark_sent(email=email, provider_message_id="pm-1")
    assert not lifecycle.email_mark_sent(email=email, provider_message_id="pm-2")
    row = _row(email)
    assert (row["status"], row["provider_message_id"], row["send_attempts"]) == (S.SENT, "pm-1", 1)
    assert row["sent_at"] == row["status_changed_at"]
    [event] = WebhookDelivery.objects.filter(event_type=WebhookEvent.MESSAGE_SENT)
    assert event.payload["data"]["email_id"] == email.pk
