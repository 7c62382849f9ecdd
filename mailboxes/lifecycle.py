"""The email lifecycle: the only code that writes ``Email.status``.

``TRANSITIONS`` lists every status an email may move to from each status; a status that
is no key is final. ``FIRST_STATUSES`` lists the statuses an email may be stored in.

Every change is a compare-and-set (``UPDATE ... WHERE status IN (the statuses it may
leave)``), so of two concurrent writers exactly one moves the email and the other learns
it lost, and a task that runs twice changes nothing the second time. A change the table
does not allow raises ``TransitionRefused`` before anything is written: that is a bug in
the caller, not a race. Each write also sets ``status_changed_at`` (the stuck-email sweep
reads it).

The changes that carry side effects have a function of their own, which emits the event
and writes the audit entry in the same transaction as the change:

* to a held status: ``email_hold`` (approval link and operator email through
  ``oversight.holds``, then ``oversight.pending``); a held email whose content changed
  is announced again by ``email_held_changed``;
* from a held status to approved or rejected: ``email_record_decision``
  (``oversight.approved`` or ``oversight.rejected``, usage, the ``email.*`` audit entry);
* from sending to sent: ``email_mark_sent`` (``message.sent``, usage);
* to send_failed, from any status an outbound email passes through before it leaves:
  ``email_fail`` (``message.send_failed`` and an email to the operator, so no failure
  goes unseen);
* from send_failed back to pending_scan: ``email_retry``, the operator's explicit retry
  (audited; the email goes through the scan and the policy again);
* to rejected because an oversight rule refuses it: ``email_refuse_by_rule``
  (``oversight.rejected`` naming the rule, the audit entry); inbound mail a rule refuses
  is stored rejected already and announced by the same function.

Every email records who decided where it went (``oversight_decision``: its mode, a rule,
the operator or an API key, and when): the policy's routing writes it with the move
(``routed_by``), a decision on a held email in ``email_record_decision``.

Every other change only writes the row and goes through ``email_move``, or through the
two cancels, which work on ids rather than loaded emails. ``email_move`` refuses the
changes above, so their effects cannot be skipped.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from accounts.actors import Actor
from accounts.models import ActorKind
from accounts.services import audit_record
from billing.models import UsageEventType
from billing.usage import usage_record
from mailboxes import enqueue
from mailboxes.events import emit_event
from mailboxes.models import DecidedBy, Direction, Email, EmailStatus, Mailbox, WebhookEvent
from mailboxes.quotas import NOT_COUNTED, sends_uncount
from multimail.inserts import row_insert
from multimail.statements import CompiledUpdate
from oversight.holds import failure_announce, hold_announce, hold_reannounce
from oversight.policy import PENDING_STATUSES, held_status, rule_refusal_reason

S = EmailStatus

TRANSITIONS: Mapping[str, frozenset[str]] = {
    # Outbound: scanned, then refused, scheduled, held or sent; cancellable until it leaves.
    # Any step may fail for good (send_failed): a message that cannot be built, a provider
    # that refuses, a task that kept failing. No outbound email stays in a transient status.
    S.PENDING_SCAN: frozenset(
        {S.REJECTED, S.SCHEDULED, S.PENDING_SEND_APPROVAL, S.SENDING, S.CANCELLED, S.SEND_FAILED}
    ),
    S.SCHEDULED: frozenset(
        {S.REJECTED, S.PENDING_SEND_APPROVAL, S.SENDING, S.CANCELLED, S.SEND_FAILED}
    ),
    # Approved (sent now, or scheduled when approved before send_at), rejected or cancelled.
    S.PENDING_SEND_APPROVAL: frozenset({S.SENDING, S.SCHEDULED, S.REJECTED, S.CANCELLED}),
    # Held instead of handed to the provider when the operator stopped sending meanwhile.
    S.SENDING: frozenset({S.SENT, S.SEND_FAILED, S.PENDING_SEND_APPROVAL}),
    # Only the operator's explicit retry (email_retry), once the cause is gone.
    S.SEND_FAILED: frozenset({S.PENDING_SCAN}),
    # Inbound: approved into the inbox (flagged spam stays flagged), rejected or cancelled.
    S.PENDING_INBOUND_APPROVAL: frozenset({S.UNREAD, S.SPAM_FLAGGED, S.REJECTED, S.CANCELLED}),
    # The agent reads mail and labels it spam or not spam.
    S.UNREAD: frozenset({S.READ, S.SPAM_QUARANTINED}),
    S.READ: frozenset({S.SPAM_QUARANTINED}),
    S.ARCHIVED: frozenset({S.SPAM_QUARANTINED}),
    S.DELETED: frozenset({S.SPAM_QUARANTINED}),
    S.SPAM_FLAGGED: frozenset({S.SPAM_QUARANTINED, S.UNREAD}),
    S.SPAM_QUARANTINED: frozenset({S.UNREAD}),
}

FIRST_STATUSES: Mapping[str, frozenset[str]] = {
    # Accepted sends wait for the scan; the pipeline moves them on.
    Direction.OUTBOUND: frozenset({S.PENDING_SCAN}),
    # Arrivals land where the oversight policy puts them (oversight.policy): rejected when
    # a rule refuses them (announced by email_refuse_by_rule).
    Direction.INBOUND: frozenset(
        {S.UNREAD, S.SPAM_FLAGGED, S.SPAM_QUARANTINED, S.PENDING_INBOUND_APPROVAL, S.REJECTED}
    ),
}

# What the agent may cancel: mail that has not left, or not been decided, yet.
CANCELLABLE_STATUSES = (
    S.PENDING_SCAN,
    S.SCHEDULED,
    S.PENDING_SEND_APPROVAL,
    S.PENDING_INBOUND_APPROVAL,
)
# Outbound mail that has not started leaving: cancelled when its mailbox is deleted.
QUEUED_OUTBOUND = (S.PENDING_SCAN, S.SCHEDULED, S.PENDING_SEND_APPROVAL)


class TransitionRefused(ValueError):
    """The table does not allow this change; nothing was written."""


def allowed(old: str, new: str) -> bool:
    return new in TRANSITIONS.get(old, frozenset())


def _has_effects(old: str, new: str) -> bool:
    """Changes that must go through their own function, which emits their effects."""
    held = frozenset(PENDING_STATUSES)
    return (
        new in (S.SENT, S.SEND_FAILED)
        or new in held
        or (old in held and new != S.CANCELLED)
        or old == S.SEND_FAILED
    )


def _check(from_: Collection[str], to: EmailStatus) -> None:
    refused = sorted(old for old in from_ if not allowed(old, to))
    if refused or not from_:
        raise TransitionRefused(f"an email cannot move from {refused or 'nowhere'} to {to}")


def _move_where(
    emails: QuerySet[Email],
    *,
    from_: Collection[str],
    to: EmailStatus,
    at: datetime,
    **fields: Any,
) -> int:
    """The UPDATE of every status change of emails not loaded (``_move_if`` has the one of
    a loaded email). An outbound email that ends rejected or cancelled stops counting
    against the send quotas: its slot goes back in the same transaction. The moving
    outbound rows are then locked and read first, so that exactly the rows read are the
    rows moved."""
    _check(from_, to)
    leaving = _leaving(emails, from_)
    uncounted: list[tuple[str, str, str]] = []
    if to in NOT_COUNTED:
        uncounted = list(
            leaving.filter(direction=Direction.OUTBOUND)
            .select_for_update()
            .values_list("pk", "account_id", "mailbox_id")
        )
    changed = leaving.update(status=to, status_changed_at=at, **fields)
    _uncount(changed, to, uncounted)
    return changed


def _leaving(emails: QuerySet[Email], from_: Collection[str]) -> QuerySet[Email]:
    return emails.filter(status__in=list(from_))


def _uncount(changed: int, to: EmailStatus, uncounted: Sequence[tuple[str, str, str]]) -> None:
    if changed and to in NOT_COUNTED and uncounted:
        sends_uncount(uncounted)


# The UPDATE of every move of a loaded email (``_move_if``): its row while still in a status
# it may leave (``leaving``) and, for a delivery's record, still under that delivery's
# claim. It runs several times per email, so it is compiled once per shape (the statuses
# left, the fields written).
_LOADED_MOVE = CompiledUpdate(
    lambda email_id, leaving, claimed_at=None: _leaving(
        Email.objects.filter(
            pk=email_id, **({} if claimed_at is None else {"delivery_claimed_at": claimed_at})
        ),
        leaving,
    ),
    params=("email_id", "claimed_at"),
)


def _move(
    email: Email,
    *,
    to: EmailStatus,
    from_: Collection[str] | None = None,
    at: datetime | None = None,
    **fields: Any,
) -> bool:
    """Compare-and-set ``email`` from ``from_`` (by default its status as loaded) to ``to``,
    writing ``fields`` with it; on success the instance shows the new values too."""
    return _move_if(email, to=to, from_=from_, at=at, **fields)


def _move_if(
    email: Email,
    *,
    to: EmailStatus,
    from_: Collection[str] | None = None,
    at: datetime | None = None,
    claimed_at: datetime | None = None,
    **fields: Any,
) -> bool:
    """``_move``, only while the email is under the delivery claim ``claimed_at`` (when
    given)."""
    now = at or timezone.now()
    leaving = tuple((email.status,) if from_ is None else from_)
    _check(leaving, to)
    changed = _LOADED_MOVE.update(
        {"status": to, "status_changed_at": now, **fields},
        email_id=email.pk,
        leaving=leaving,
        claimed_at=claimed_at,
    )
    if email.direction == Direction.OUTBOUND:
        _uncount(changed, to, [(email.pk, email.account_id, email.mailbox_id)])
    if changed:
        email.status, email.status_changed_at = to, now
        for name, value in fields.items():
            if not hasattr(value, "resolve_expression"):  # F() is only known after a re-read
                setattr(email, name, value)
    return bool(changed)


# --- Who decided -------------------------------------------------------------------------


def routed_by(rule: str | None, at: datetime) -> dict[str, Any]:
    """The oversight_decision fields of an email the policy just routed: by ``rule`` (its
    name), or by the mode when none matched. Written with the move (or the creation)."""
    return {
        "decided_by": DecidedBy.RULE if rule else DecidedBy.MODE,
        "decided_rule": rule or "",
        "decided_at": at,
    }


def oversight_decision(email: Email) -> dict[str, Any] | None:
    """Who decided where the email goes, as the API, the console, events and the audit log
    show it; None while nobody has (an email still waiting for its scan)."""
    if not email.decided_by:
        return None
    return {
        "by": email.decided_by,
        "rule": email.decided_rule or None,
        "at": email.decided_at.isoformat() if email.decided_at else None,
    }


# --- Storing -------------------------------------------------------------------------


def email_create(**fields: Any) -> Email:
    """Store a new email in its first status (``status`` and ``direction`` are required).
    The row ``Email.objects.create`` writes, with its INSERT built once per process: built
    per call, it cost more CPU than the rest of storing an inbound email's row."""
    status, direction = fields["status"], fields["direction"]
    if status not in FIRST_STATUSES[direction]:
        raise TransitionRefused(f"a new {direction} email cannot start as {status}")
    return row_insert(Email(**fields))


# --- Changes without side effects --------------------------------------------------------


def email_move(
    email: Email,
    *,
    to: EmailStatus,
    from_: Collection[str] | None = None,
    at: datetime | None = None,
    **fields: Any,
) -> bool:
    """Move ``email`` to ``to`` if it is still in one of ``from_`` (by default the status it
    was loaded with); False, and nothing written, when something else moved it first.

    ``fields`` are written in the same UPDATE (``failure_reason``, ``read_at``, ...);
    ``at`` is the change's time (``status_changed_at``), now by default.
    """
    leaving = (email.status,) if from_ is None else from_
    effectful = sorted(old for old in leaving if _has_effects(old, to))
    if effectful:
        raise TransitionRefused(
            f"moving from {effectful} to {to} has side effects: use its own lifecycle function"
        )
    return _move(email, to=to, from_=leaving, at=at, **fields)


def email_cancel(*, mailbox: Mailbox, email_id: str) -> bool:
    """The agent cancels mail that has not left or been decided; False when it already
    moved on (or does not exist): the caller reads which."""
    return bool(
        _move_where(
            Email.objects.filter(mailbox=mailbox, pk=email_id),
            from_=CANCELLABLE_STATUSES,
            to=S.CANCELLED,
            at=timezone.now(),
        )
    )


def mailbox_cancel_queued(*, mailbox: Mailbox) -> int:
    """Cancel a deleted mailbox's outbound mail that has not started leaving; the count."""
    return _move_where(
        Email.objects.filter(mailbox=mailbox, direction=Direction.OUTBOUND),
        from_=QUEUED_OUTBOUND,
        to=S.CANCELLED,
        at=timezone.now(),
        failure_reason="mailbox deleted",
    )


# --- Changes with side effects -----------------------------------------------------------


@transaction.atomic
def email_hold(*, email: Email, rule: str | None = None, reason: str = "") -> None:
    """Put an email in front of the operator: called by every path whose policy decision is
    HOLD (outbound pipeline, inbound from webhook or SMTP, scheduled sends), and for an
    email stored already held (inbound in gated_all).

    Sets the held status, has oversight create the hosted approval link and email the
    operator the full content with it, and emits ``oversight.pending``. ``rule`` names the
    oversight rule that held it (None: its mode did); an email stored held already carries
    that from its creation. Safe to call twice
    (the sweep resumes stuck emails): an email that already has a live link is not
    announced again. A decided or cancelled email is left alone.

    ``reason``: why it is held when its mode did not hold it (the operator's stop switch).
    Such a hold also takes back an approval the email had: it was approved to leave, it
    is not leaving, and it needs a decision again once sending resumes.
    """
    locked = Email.objects.select_for_update().get(pk=email.pk)
    if locked.status in (S.REJECTED, S.CANCELLED):
        return  # withdrawn or rejected meanwhile: nothing left to hold
    if locked.approved_at is not None and not reason:
        return  # decided meanwhile
    now = timezone.now()
    held = held_status(locked.direction)
    if locked.status != held:
        voided: dict[str, Any] = {}
        if reason:
            voided = {
                "approved_at": None,
                "approved_by": None,
                "decision_reason": "",
                "approved_version": "",
            }
        _move(locked, to=held, at=now, hold_reason=reason[:200], **voided, **routed_by(rule, now))
    email.status, email.status_changed_at = locked.status, locked.status_changed_at
    email.hold_reason, email.approved_at = locked.hold_reason, locked.approved_at
    email.decided_by, email.decided_rule = locked.decided_by, locked.decided_rule
    email.decided_at = locked.decided_at
    notification_id = hold_announce(email=locked, now=now)
    if notification_id is None:
        return
    enqueue.notify_operator_after_commit(notification_id)
    _emit_pending(locked)


def email_held_changed(*, email: Email, changed: Sequence[str]) -> None:
    """A held email changed while the operator was deciding (an edit by the agent, or a
    change of its mailbox's sender settings): it stays held, the operator is emailed again
    with what changed (``changed``: the labels, "To", "Subject", ...) and a new link, every
    earlier link stops deciding, and ``oversight.pending`` is emitted again with
    ``changed``. A decision names the version it was made on, so nothing approved before
    the change covers the new content. The caller holds the email's row lock."""
    notification_id = hold_reannounce(email=email, changed=changed, now=timezone.now())
    enqueue.notify_operator_after_commit(notification_id)
    _emit_pending(email, changed=changed)


def mailbox_sender_changed(*, mailbox: Mailbox, changed: Sequence[str]) -> int:
    """Settings of ``mailbox`` that its outbound mail carries (sender name, automatic Cc and
    Bcc, signature, AI disclosure) changed: each of its held emails now reads differently,
    so each is announced again (``email_held_changed``). The caller holds the mailbox's row
    lock, which decisions take too. Returns how many emails were announced again."""
    held = (
        Email.objects.select_for_update(of=("self",))
        .select_related("account")
        .filter(mailbox=mailbox, direction=Direction.OUTBOUND, status=S.PENDING_SEND_APPROVAL)
        .order_by("pk")
    )
    count = 0
    for email in held:
        email.mailbox = mailbox
        email_held_changed(email=email, changed=changed)
        count += 1
    return count


def _emit_pending(email: Email, *, changed: Sequence[str] | None = None) -> None:
    # The agent may receive this event (mailbox oversight_webhook_url, subscriptions), so it
    # never carries the approval link: only the operator's inbox does.
    data: dict[str, Any] = {
        "email_id": email.pk,
        "mailbox_id": email.mailbox_id,
        "direction": email.direction,
        "from": email.from_address,
        "to": email.to,
        "subject": email.subject,
        "status": email.status,
        "oversight_decision": oversight_decision(email),
    }
    if changed is not None:
        data["changed"] = list(changed)
    if email.hold_reason:
        data["hold_reason"] = email.hold_reason
    emit_event(
        account=email.account,
        event_type=WebhookEvent.OVERSIGHT_PENDING,
        mailbox=email.mailbox,
        data=data,
    )


def email_record_decision(
    *,
    email: Email,
    to: EmailStatus,
    actor: Actor,
    version: str,
    reason: str = "",
    request_id: str = "",
    at: datetime | None = None,
    failure_reason: str = "",
) -> bool:
    """Record the operator's decision on a held ``email``: it moves to ``to`` (rejected, or
    where the policy sends approved mail) with who decided, when, why and on which content
    ``version`` (delivery sends only that version), and the decision is announced
    (``oversight.approved`` / ``oversight.rejected``), counted and audited.

    False, and nothing written, when the email left its held status first (a concurrent
    cancel or decision). Handing approved mail to delivery is the caller's next step.

    The approval expiry rejects through here too, as the system actor, with
    ``failure_reason`` ("expired after N hours"): the same events and audit entry, but no
    oversight action is counted, since nobody decided.
    """
    now = at or timezone.now()
    won = _move(
        email,
        to=to,
        at=now,
        approved_at=now,
        approved_by=actor.display,
        decision_reason=reason,
        approved_version=version,
        decided_by=DecidedBy.API_KEY if actor.kind == ActorKind.API_KEY else DecidedBy.OPERATOR,
        decided_rule="",
        decided_at=now,
        **({"failure_reason": failure_reason[:2000]} if failure_reason else {}),
    )
    if not won:
        return False
    approved = to != S.REJECTED
    decision = oversight_decision(email)
    _emit_decision(email, approved=approved, decided_via=str(actor.kind), reason=reason)
    if actor.kind != ActorKind.SYSTEM:
        usage_record(account=email.account, event_type=UsageEventType.OVERSIGHT_ACTIONS)
    audit_record(
        actor=actor,
        action="email.approved" if approved else "email.rejected",
        resource_type="email",
        resource_id=email.pk,
        metadata={
            "direction": email.direction,
            "mailbox_id": email.mailbox_id,
            "status": email.status,
            "reason": reason,
            "version": version,
            "oversight_decision": decision,
        },
        request_id=request_id,
    )
    return True


def _emit_decision(email: Email, *, approved: bool, decided_via: str, **extra: Any) -> None:
    """``oversight.approved`` or ``oversight.rejected``: one payload whoever decided (the
    operator, a key, a rule, the expiry), with what that decider adds in ``extra``."""
    emit_event(
        account=email.account,
        event_type=WebhookEvent.OVERSIGHT_APPROVED if approved else WebhookEvent.OVERSIGHT_REJECTED,
        mailbox=email.mailbox,
        data={
            "email_id": email.pk,
            "mailbox_id": email.mailbox_id,
            "direction": email.direction,
            "subject": email.subject,
            "status": email.status,
            "decision": "approved" if approved else "rejected",
            "decided_via": decided_via,
            **extra,
            "oversight_decision": oversight_decision(email),
        },
    )


@transaction.atomic
def email_refuse_by_rule(*, email: Email, rule: str, at: datetime | None = None) -> bool:
    """An oversight rule refuses ``email``: it ends ``rejected`` with a failure_reason naming
    the rule and the rule recorded as its decision, ``oversight.rejected`` says so and the
    audit log keeps it. Outbound mail moves from where it waits (pending_scan or scheduled;
    the caller holds its row lock); inbound mail was stored rejected (``email_create`` with
    ``rule_refused_fields``) and is only announced. False when outbound mail moved first."""
    now = at or timezone.now()
    if email.status != S.REJECTED and not _move(
        email, to=S.REJECTED, at=now, **rule_refused_fields(rule, now)
    ):
        return False
    decision = oversight_decision(email)
    _emit_decision(
        email,
        approved=False,
        decided_via=DecidedBy.RULE.value,
        rule=rule,
        failure_reason=email.failure_reason,
    )
    audit_record(
        actor=Actor.system(email.account, label=f"oversight rule {rule}"),
        action="email.refused_by_rule",
        resource_type="email",
        resource_id=email.pk,
        metadata={
            "direction": email.direction,
            "mailbox_id": email.mailbox_id,
            "rule": rule,
            "oversight_decision": decision,
        },
    )
    return True


def rule_refused_fields(rule: str, at: datetime) -> dict[str, Any]:
    """What an email a rule refused carries besides its status."""
    return {"failure_reason": rule_refusal_reason(rule), **routed_by(rule, at)}


def email_mark_sent(
    *, email: Email, provider_message_id: str, claimed_at: datetime | None = None
) -> bool:
    """The provider (or a local mailbox) took a ``sending`` email: it is sent, counted, and
    ``message.sent`` is emitted. False when it was not ``sending`` any more, or (with
    ``claimed_at``) when another delivery claimed it since."""
    now = timezone.now()
    won = _move_if(
        email,
        claimed_at=claimed_at,
        to=S.SENT,
        from_=(S.SENDING,),
        at=now,
        sent_at=now,
        provider_message_id=provider_message_id,
        send_attempts=F("send_attempts") + 1,
        delivery_claimed_at=None,
    )
    if not won:
        return False
    usage_record(account=email.account, event_type=UsageEventType.EMAILS_SENT)
    emit_event(
        account=email.account,
        event_type=WebhookEvent.MESSAGE_SENT,
        mailbox=email.mailbox,
        data={
            "email_id": email.pk,
            "mailbox_id": email.mailbox_id,
            "thread_id": email.thread_id,
            "to": email.to,
            "subject": email.subject,
            "message_id": email.message_id,
            "sent_at": now.isoformat(),
        },
    )
    return True


@transaction.atomic
def email_fail(*, email: Email, reason: str, from_: Collection[str] | None = None) -> bool:
    """Give up on an outbound email for good: it becomes ``send_failed`` with ``reason`` (for
    the operator, the agent and the console), ``message.send_failed`` is emitted and the
    operator is emailed why. False when it had moved on first (``from_``: the statuses it
    may leave, by default its status as loaded)."""
    now = timezone.now()
    # A delivery's claim goes with it: an operator's retry starts the email afresh.
    failed = _move(
        email,
        to=S.SEND_FAILED,
        from_=from_,
        at=now,
        failure_reason=reason[:2000],
        delivery_claimed_at=None,
    )
    if not failed:
        return False
    emit_event(
        account=email.account,
        event_type=WebhookEvent.MESSAGE_SEND_FAILED,
        mailbox=email.mailbox,
        data={
            "email_id": email.pk,
            "mailbox_id": email.mailbox_id,
            "thread_id": email.thread_id,
            "to": email.to,
            "subject": email.subject,
            "status": email.status,
            "failure_reason": email.failure_reason,
        },
    )
    enqueue.notify_operator_after_commit(failure_announce(email=email, now=now))
    return True


@transaction.atomic
def email_retry(*, email: Email, actor: Actor, request_id: str = "") -> bool:
    """The operator sends a ``send_failed`` email again. It goes back to ``pending_scan``
    with its earlier decision and failure cleared, so it is scanned and the policy decides
    again (a gated mailbox holds it for a new decision); the retry is audited. False when
    it was not ``send_failed`` any more (a second click)."""
    previous = email.failure_reason
    won = _move(
        email,
        to=S.PENDING_SCAN,
        from_=(S.SEND_FAILED,),
        failure_reason="",
        hold_reason="",
        approved_at=None,
        approved_by=None,
        decision_reason="",
        approved_version="",
        decided_by="",
        decided_rule="",
        decided_at=None,
        send_attempts=0,
    )
    if not won:
        return False
    audit_record(
        actor=actor,
        action="email.retried",
        resource_type="email",
        resource_id=email.pk,
        metadata={"mailbox_id": email.mailbox_id, "failure_reason": previous},
        request_id=request_id,
    )
    enqueue.process_email_after_commit(email.pk)
    return True
