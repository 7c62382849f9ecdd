"""Oversight writes: decisions, hosted links, mode changes.

Holding mail is the lifecycle's ``email_hold`` (mailboxes.lifecycle), which has
``oversight.holds`` create the approval link and tell the operator.

Every decision, whatever path it comes from (API ``oversight`` key, console, hosted link),
goes through ``email_decide``: one row lock, one winner, one delivery. A decision names the
content version it was made on (the console and the hosted page always do, the API may):
an email that changed since is not decided (``EmailChanged``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.actors import Actor
from accounts.codes import TypedCode, code_issue, code_redeem
from accounts.models import CodePurpose, OneTimeCode
from accounts.services import audit_record, operator_email_send
from mailboxes import lifecycle
from mailboxes.models import Direction, Email, EmailStatus, Mailbox
from mailboxes.quotas import account_sending_problems, storage_add
from mailboxes.services.outbound import pipeline
from mailboxes.services.outbound.accept import content_hash, suppressed_recipients
from mailboxes.versions import email_version_read
from multimail import ratelimit
from multimail.errors import ApiError, not_found
from oversight import policy
from oversight.holds import approval_links_spend
from oversight.selectors import approval_link_find, decision_email, decision_mailbox_locked

UPGRADE_CODE_TTL = timedelta(hours=24)
UPGRADE_REQUESTS_PER_HOUR = 3


class Action(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class DecisionStatus(StrEnum):
    APPROVED = "approved"
    APPROVED_AND_SENT = "approved_and_sent"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Decision:
    status: DecisionStatus
    email: Email
    # The provider's id once delivery ran (in-process tasks); None while it is queued.
    postmark_message_id: str | None


class EmailChanged(ApiError):
    """The email changed since the version a decision names: nothing was decided."""

    def __init__(self, email: Email) -> None:
        super().__init__(
            "conflict",
            "This email changed since you read it (its version is different now), so "
            "nothing was decided. Read it again (GET /v1/oversight/pending) and decide on "
            "the current version.",
        )
        self.email = email


# --- Decisions ----------------------------------------------------------------------------


def email_decide(
    *,
    actor: Actor,
    email_id: str,
    action: str,
    version: str | None = None,
    reason: str = "",
    request_id: str = "",
    edits: Mapping[str, Any] | None = None,
) -> Decision:
    """Approve or reject a held email. Of concurrent decisions exactly one wins; the others
    get ``already_decided``. An approved outbound email is handed to delivery once.

    ``version`` is the content version the decider saw (mailboxes.versions): when the
    email has changed since, nothing is decided (``EmailChanged``, a 409 ``conflict``).
    Without it the decision is for the current version, which is recorded either way:
    delivery sends only the approved version.

    Signature used by the console and the hosted page; ``action`` is "approve" or "reject".

    ``edits`` (approve only, outbound only): the operator's corrections (``to``, ``cc``,
    ``bcc``, ``subject``, ``markdown``), applied under the same lock, rendered and scanned
    again, and approved in the same step; ``version`` is then the version they corrected.
    """
    if action not in (Action.APPROVE, Action.REJECT):
        raise ApiError("invalid_parameter", "action must be approve or reject.", param="action")
    if edits and action != Action.APPROVE:
        raise ApiError("invalid_parameter", "edits go with action approve only.", param="edits")
    decision = _decide(
        actor=actor,
        email_id=email_id,
        action=Action(action),
        version=version,
        reason=reason,
        request_id=request_id,
        edits=edits or {},
    )
    if decision.status != DecisionStatus.APPROVED_AND_SENT:
        return decision
    # Delivery may have run already (in-process tasks): then report its message id.
    message_id = pipeline.sent_message_id(email=decision.email)
    return Decision(decision.status, decision.email, message_id)


MAX_BATCH = 100


@dataclass(frozen=True, slots=True)
class BatchResult:
    email_id: str
    decision: Decision | None = None
    error: ApiError | None = None

    def as_json(self) -> dict[str, Any]:
        if self.error is not None:
            return {
                "email_id": self.email_id,
                "error": {"code": self.error.code, "message": self.error.message},
            }
        assert self.decision is not None
        return {"email_id": self.email_id, "status": str(self.decision.status)}


def emails_decide(
    *,
    actor: Actor,
    email_ids: Sequence[str],
    action: str,
    versions: Mapping[str, str] | None = None,
    reason: str = "",
    request_id: str = "",
) -> list[BatchResult]:
    """Decide several held emails the same way, in the order given. Each is decided on its
    own, exactly as a single decision (``email_decide``: its own transaction, the mailbox
    lock, the compare-and-set), so a concurrent decision on any of them still has exactly
    one winner, and one email's refusal (already decided, changed since ``versions[id]``,
    not found) is its result alone, never the others'."""
    results = []
    for email_id in email_ids:
        try:
            decision = email_decide(
                actor=actor,
                email_id=email_id,
                action=action,
                version=(versions or {}).get(email_id),
                reason=reason,
                request_id=request_id,
            )
        except ApiError as error:
            results.append(BatchResult(email_id, error=error))
        else:
            results.append(BatchResult(email_id, decision=decision))
    return results


def _not_pending(email: Email) -> ApiError:
    if email.approved_by is not None:
        decided = (
            DecisionStatus.REJECTED
            if email.status == EmailStatus.REJECTED
            else DecisionStatus.APPROVED
        )
        return ApiError(
            "already_decided",
            f"This email was already {decided} by another decision. No action needed.",
            status=str(decided),
        )
    return not_found(
        "pending_email",
        f"That email is not waiting for a decision (its status is {email.status}). "
        "List pending emails with GET /v1/oversight/pending.",
    )


@transaction.atomic
def _decide(
    *,
    actor: Actor,
    email_id: str,
    action: Action,
    version: str | None,
    reason: str,
    request_id: str,
    edits: Mapping[str, Any],
) -> Decision:
    # Decisions queue on the mailbox's row, not the email's: a losing decision waits here,
    # then reads the winner's committed result, and never holds the email row, so the
    # delivery the winner hands off on commit (which skips locked rows) finds it free.
    # The mailbox is found through the email in the locking statement itself, and the email
    # is read only once the lock is held: one read of each row, never a stale one.
    # NO KEY UPDATE (oversight.selectors): decisions still queue, but mail stored into the
    # mailbox meanwhile is not held up behind them.
    mailbox = decision_mailbox_locked(account_id=actor.account.pk, email_id=email_id)
    if mailbox is None:
        raise not_found("pending_email")
    # The stop switch comes with the email, read as committed once the lock is held (one
    # statement fewer than reading it apart): an approval racing a stop is held again at
    # delivery.
    email = decision_email(email_id=email_id)
    email.account, email.mailbox = actor.account, mailbox
    if email.status not in policy.PENDING_STATUSES:
        raise _not_pending(email)
    # Under the mailbox lock, which every edit of a held email takes too: the version read
    # here is the one approved, and cannot change before the decision commits.
    current = email_version_read(email=email)
    if version is not None and version != current:
        raise EmailChanged(email)
    if edits:
        if email.direction != Direction.OUTBOUND:
            raise ApiError(
                "invalid_parameter",
                "Only outbound emails can be edited; approve or reject this one as it is.",
                param="edits",
            )
        current = _edit_held(email=email, edits=edits, actor=actor, request_id=request_id)
    now = timezone.now()
    if action == Action.APPROVE:
        if email.direction == Direction.OUTBOUND:
            # The mailbox may have been lowered to read_only since the email was held.
            policy.ensure_can_send(email.mailbox.oversight_mode)
            stopped: bool = email.account_sending_stopped  # type: ignore[attr-defined]
            policy.ensure_not_stopped(stopped=stopped)
        new_status = policy.approved_status(email, now=now)
        result = (
            DecisionStatus.APPROVED_AND_SENT
            if new_status == EmailStatus.SENDING
            else DecisionStatus.APPROVED
        )
    else:
        new_status = EmailStatus.REJECTED
        result = DecisionStatus.REJECTED

    # Compare-and-set on the pending status as well: a cancel by the agent does not take the
    # mailbox lock, and must not be overwritten by a decision.
    won = lifecycle.email_record_decision(
        email=email,
        to=new_status,
        actor=actor,
        version=current,
        reason=reason,
        request_id=request_id,
        at=now,
    )
    if not won:
        email.refresh_from_db()
        raise _not_pending(email)
    approval_links_spend(email_id=email.pk, now=now)
    if action == Action.APPROVE and email.direction == Direction.OUTBOUND:
        pipeline.email_release(email=email)
    return Decision(result, email, None)


EDITABLE = ("to", "cc", "bcc", "subject", "markdown")


def _edit_held(*, email: Email, edits: Mapping[str, Any], actor: Actor, request_id: str) -> str:
    """Apply the operator's corrections to a held outbound email (the caller holds its
    mailbox's lock, as every edit of held mail does): checked, rendered and scanned again,
    saved, audited with the before and after; its new version, the one approved."""
    changed = {
        name: edits[name]
        for name in EDITABLE
        if name in edits and edits[name] != getattr(email, name)
    }
    if not changed:
        return email_version_read(email=email)
    recipients = {
        name: list(changed.get(name, getattr(email, name))) for name in ("to", "cc", "bcc")
    }
    suppressed = suppressed_recipients(
        email.account, [*recipients["to"], *recipients["cc"], *recipients["bcc"]]
    )
    if suppressed:
        raise ApiError(
            "recipient_suppressed",
            f"These recipients are on the suppression list: {', '.join(suppressed)}. Nothing "
            "was changed or approved.",
            suppressed=suppressed,
        )
    before = {name: getattr(email, name) for name in changed}
    stored_before = email.size_bytes
    for name, value in changed.items():
        setattr(email, name, value)
    email.content_hash = content_hash(
        to=recipients["to"],
        cc=recipients["cc"],
        bcc=recipients["bcc"],
        subject=email.subject,
        markdown=email.markdown,
    )
    refusal = pipeline.content_scan(email)
    if refusal is not None:
        raise ApiError(
            "content_rejected",
            f"The edited content was refused by the content filter: {refusal}. Nothing was "
            "changed or approved; correct it and try again.",
            reason=refusal,
        )
    email.edited_by_operator = True
    email.save(
        update_fields=[*changed, "content_hash", "edited_by_operator", *pipeline.SCANNED_FIELDS]
    )
    storage_add(account_id=email.account_id, delta=email.size_bytes - stored_before)
    audit_record(
        actor=actor,
        action="email.edited_by_operator",
        resource_type="email",
        resource_id=email.pk,
        metadata={"before": before, "after": dict(changed)},
        request_id=request_id,
    )
    return email_version_read(email=email)


@dataclass(frozen=True, slots=True)
class Outcome:
    message: str
    # False when an approval will not have its effect (the email does not leave): the
    # console shows it as a warning, not as a success.
    as_decided: bool = True


def decision_outcome(*, decision: Decision) -> Outcome:
    """What really happened, in one sentence for the operator (console, hosted page): an
    approval says so when the email did not, or will not, leave, and why."""
    email = decision.email
    if decision.status == DecisionStatus.REJECTED:
        if email.direction == Direction.INBOUND:
            return Outcome("Rejected: the agent will never see it.")
        return Outcome("Rejected: it will never be sent.")
    if email.direction == Direction.INBOUND:
        return Outcome("Approved: the agent can read it now.")
    stopping = [
        p.message for p in account_sending_problems(account=email.account) if p.stops_delivery
    ]
    if stopping:
        return Outcome(
            f"Approved, but {'; and '.join(stopping)}. It is not sent: retry it from its page "
            "in the console once that is fixed.",
            as_decided=False,
        )
    if email.status == EmailStatus.SEND_FAILED:
        return Outcome(
            f"Approved, but it was not sent: {email.failure_reason}. Fix the cause, then "
            "retry it from its page in the console.",
            as_decided=False,
        )
    if email.status == EmailStatus.SENT:
        return Outcome("Approved and sent.")
    if email.status == EmailStatus.SCHEDULED and email.send_at is not None:
        when = f"{email.send_at:%Y-%m-%d %H:%M} UTC"
        return Outcome(f"Approved: it will be sent at its scheduled time ({when}).")
    return Outcome("Approved: the email is on its way.")


# --- Hosted approval link -------------------------------------------------------------------


class LinkUnusable(Exception):
    """The hosted link cannot decide: unknown, expired, spent, or replaced by a newer one."""


def approval_link_decide(*, token: str, action: str, version: str, reason: str = "") -> Decision:
    """Decide from the hosted page, on the ``version`` the page showed. The token is the
    authority: it was emailed to the operator only and is bound to one email."""
    link = approval_link_find(token=token)
    if link is None or not link.is_usable(now=timezone.now()):
        raise LinkUnusable
    account = link.email.account
    actor = Actor.hosted_link(account, label=f"approval link sent to {account.oversight_email}")
    return email_decide(
        actor=actor, email_id=link.email_id, action=action, version=version, reason=reason
    )


# --- Retrying a failed email -------------------------------------------------------------


def email_retry(*, actor: Actor, email_id: str, request_id: str = "") -> Email:
    """The operator sends a ``send_failed`` email again, once its cause is gone: it is
    scanned and goes through the policy again (a gated mailbox holds it for a new decision:
    the earlier approval does not carry over). Refused while the cause is still there."""
    with transaction.atomic():
        mailbox = (
            Mailbox.objects.select_for_update(no_key=True)
            .select_related("account")
            .filter(
                pk__in=Email.objects.filter(account=actor.account, pk=email_id).values("mailbox_id")
            )
            .first()
        )
        if mailbox is None:
            raise not_found("email")
        email = Email.objects.select_for_update(of=("self",)).get(pk=email_id)
        email.mailbox, email.account = mailbox, mailbox.account
        if email.status != EmailStatus.SEND_FAILED:
            raise ApiError(
                "conflict",
                f"Only emails that failed to send can be retried; this one is {email.status}.",
            )
        if not mailbox.is_active:
            raise ApiError("conflict", "Its mailbox was deleted: a deleted mailbox sends nothing.")
        policy.ensure_can_send(mailbox.oversight_mode)
        stopping = [
            p.message for p in account_sending_problems(account=mailbox.account) if p.stops_delivery
        ]
        if stopping:
            raise ApiError(
                "conflict",
                f"It would fail again: {'; and '.join(stopping)}. Retry once that is fixed.",
            )
        lifecycle.email_retry(email=email, actor=actor, request_id=request_id)
    return email


# --- Oversight modes ----------------------------------------------------------------------


def _mailbox_of(actor: Actor, mailbox_id: str, *, lock: bool = False) -> Mailbox:
    query = Mailbox.objects.filter(account=actor.account, pk=mailbox_id, deleted_at__isnull=True)
    mailbox = (query.select_for_update() if lock else query).first()
    if mailbox is None:
        raise not_found("mailbox")
    return mailbox


@transaction.atomic
def mailbox_set_mode(*, actor: Actor, mailbox: Mailbox, mode: str, request_id: str = "") -> Mailbox:
    """Set a mailbox's oversight mode directly: the operator in the console (either
    direction), downgrades by PATCH, and redeemed upgrade codes."""
    if not policy.is_mode(mode):
        raise ApiError(
            "invalid_parameter",
            f"{mode!r} is not an oversight mode. Use one of: {', '.join(policy.LADDER)}.",
            param="oversight_mode",
        )
    locked = _mailbox_of(actor, mailbox.pk, lock=True)
    previous = locked.oversight_mode
    if previous != mode:
        locked.oversight_mode = mode
        locked.save(update_fields=["oversight_mode"])
        direction = "upgraded" if policy.is_upgrade(previous, mode) else "downgraded"
        audit_record(
            actor=actor,
            action=f"mailbox.{direction}",
            resource_type="mailbox",
            resource_id=locked.pk,
            metadata={"from": previous, "to": mode},
            request_id=request_id,
        )
    mailbox.oversight_mode = mode
    return locked


def _upgrade_subject(mailbox: Mailbox, target_mode: str) -> str:
    return f"{mailbox.pk}:{target_mode}"


def mailbox_upgrade_request(
    *, actor: Actor, mailbox_id: str, target_mode: str, request_id: str = ""
) -> OneTimeCode:
    """An agent asks for more autonomy: the operator gets a one-time code to hand over."""
    mailbox = _mailbox_of(actor, mailbox_id)
    current = mailbox.oversight_mode
    if target_mode == current:
        raise ApiError(
            "validation_error",
            f"The mailbox is already {current}. Ask for a mode above it on the ladder "
            f"({' > '.join(policy.LADDER)}).",
            param="target_mode",
        )
    if not policy.is_upgrade(current, target_mode):
        raise ApiError(
            "validation_error",
            f"{target_mode} is a downgrade from {current}; downgrades need no approval. Use "
            "PATCH /v1/mailboxes/{id} with oversight_mode.",
            param="target_mode",
        )
    window = ratelimit.hit(
        f"upgrade-request:{mailbox.pk}", limit=UPGRADE_REQUESTS_PER_HOUR, window_seconds=3600
    )
    if not window.allowed:
        raise ApiError(
            "rate_limit_exceeded",
            f"This mailbox asked for an upgrade {UPGRADE_REQUESTS_PER_HOUR} times this hour. "
            f"Wait {window.retry_after} seconds (Retry-After), or ask the operator to enter "
            "the code already emailed.",
            limit_type="upgrade_request",
            headers={"Retry-After": str(window.retry_after)},
        )
    with transaction.atomic():
        record, plaintext = code_issue(
            account=actor.account,
            purpose=CodePurpose.MODE_UPGRADE,
            ttl=UPGRADE_CODE_TTL,
            subject=_upgrade_subject(mailbox, target_mode),
            payload={"mailbox_id": mailbox.pk, "from": current, "to": target_mode},
        )
        audit_record(
            actor=actor,
            action="mailbox.upgrade_requested",
            resource_type="mailbox",
            resource_id=mailbox.pk,
            metadata={"from": current, "to": target_mode, "code_id": record.pk},
            request_id=request_id,
        )
        operator_email_send(
            account=actor.account,
            subject=f"Upgrade request: {mailbox.address} to {target_mode}",
            text=render_to_string(
                "oversight/email/upgrade_request.txt",
                {
                    "mailbox": mailbox,
                    "current": current,
                    "target": target_mode,
                    "code": plaintext,
                    "requested_by": actor.display,
                    "console_url": f"{settings.PUBLIC_BASE_URL}/console/",
                },
            ),
        )
    return record


@transaction.atomic
def mailbox_upgrade_redeem(
    *, actor: Actor, mailbox_id: str, typed: TypedCode, request_id: str = ""
) -> Mailbox:
    """Use an upgrade code: single use, 24 h, only for the mailbox and mode it was issued
    for, and only while that mode is still above the mailbox's current one. One typed code
    is one attempt against the mailbox's budget, whichever modes it could be for."""
    mailbox = _mailbox_of(actor, mailbox_id, lock=True)
    current = mailbox.oversight_mode
    record = code_redeem(
        account=actor.account,
        purpose=CodePurpose.MODE_UPGRADE,
        typed=typed,
        target=mailbox.pk,
        subject=[
            _upgrade_subject(mailbox, target)
            for target in policy.LADDER[policy.rank(current) + 1 :]
        ],
    )
    if record is None:
        raise ApiError(
            "validation_error",
            "The upgrade code is wrong, expired (codes last 24 hours), already used, or was "
            "issued for another mailbox or mode. Request a new one with "
            "POST /v1/mailboxes/{id}/request-upgrade.",
            param="code",
        )
    target = record.subject.partition(":")[2]
    audit_record(
        actor=actor,
        action="upgrade_code.used",
        resource_type="mailbox",
        resource_id=mailbox.pk,
        metadata={"code_id": record.pk, "to": target},
        request_id=request_id,
    )
    return mailbox_set_mode(actor=actor, mailbox=mailbox, mode=target, request_id=request_id)
