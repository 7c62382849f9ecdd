"""The outbound pipeline after a send is accepted: scan, route, deliver.

``email_process`` (the process_email task) renders and scans a ``pending_scan`` email and
asks the oversight policy where it goes: refused, held for the operator, scheduled, or
sending. ``email_release_scheduled`` asks again when a scheduled email's send_at comes;
``email_release`` hands an email the operator approved to delivery. ``email_deliver`` (the
deliver_email task) builds the MIME message (services.outbound.message), hands copies for
this server's own mailboxes to the inbound service and the rest to the configured mailer
(services.outbound.provider).

Every status change goes through the lifecycle (mailboxes.lifecycle) as a compare-and-set,
after re-reading the status under the email's row lock, so a task that runs twice, or a
sweep that re-enqueues an email already moving on, changes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import OperationalError, transaction
from django.db.models import BinaryField, F
from django.db.models.functions import Substr
from django.utils import timezone

from accounts.selectors import account_sending_stopped
from mailboxes import enqueue, lifecycle
from mailboxes.models import Direction, Email, EmailStatus, Mailbox
from mailboxes.quotas import storage_add
from mailboxes.selectors import email_in_status, mailbox_ids_at, sender_locked
from mailboxes.services.attachment_safety import HEAD_BYTES
from mailboxes.services.content_filter import AttachmentInfo, content_report
from mailboxes.services.correspondents import correspondents_record
from mailboxes.services.inbound.receive import inbound_receive
from mailboxes.services.outbound.message import message_build
from mailboxes.services.outbound.provider import provider_send
from mailboxes.services.rendering import markdown_render
from mailboxes.services.spam import SpamSignals, spam_score
from mailboxes.versions import email_version_read
from multimail.statements import CompiledUpdate
from oversight.policy import (
    STOPPED_HOLD_REASON,
    OutboundDecision,
    Outcome,
    mailbox_rules,
    outbound_decision,
    outbound_step,
)

logger = logging.getLogger("multimail.outbound")

# An email in pending_scan or sending for longer than this lost its task (worker killed,
# broker restarted): the sweep enqueues it again.
STUCK_AFTER = timedelta(minutes=3)
# ... and one still there after this long is not coming out (a message that kills the
# worker each time): the sweep gives up on it, and the operator is told.
GIVE_UP_AFTER = timedelta(hours=6)


def _step(email: Email, now: datetime) -> OutboundDecision:
    """What the policy does with an email (scanned, or scheduled and due) now: its mode, or
    the first of its mailbox's oversight rules that matches. The caller holds the sender's
    locks (``_lock_sender``): the stop switch, which locks the account row, is read as it
    is now."""
    mailbox = email.mailbox
    return outbound_step(
        email,
        mailbox.oversight_mode,
        now=now,
        rules=mailbox_rules(mailbox),
        stopped=email.account.sending_stopped,
    )


def _route(
    email: Email,
    now: datetime,
    *,
    deliver_here: bool = False,
    step: OutboundDecision | None = None,
) -> bool:
    """Move an email where the policy sends it (``step``, or ``_step`` now), under its row
    lock, taken after its mailbox's and account's. True when it is now ``sending``
    (``_handed_on``)."""
    if step is None:
        step = _step(email, now)
    if step.outcome == Outcome.REFUSE and step.rule is not None:
        lifecycle.email_refuse_by_rule(email=email, rule=step.rule, at=now)
    elif step.outcome == Outcome.REFUSE:
        lifecycle.email_move(
            email,
            to=EmailStatus.REJECTED,
            failure_reason="mailbox_read_only: the mailbox became read_only before the email "
            "was sent",
            **lifecycle.routed_by(None, now),
        )
    elif step.outcome == Outcome.HOLD:
        lifecycle.email_hold(email=email, rule=step.rule, reason=step.hold_reason)
    elif step.outcome == Outcome.WAIT:
        lifecycle.email_move(email, to=EmailStatus.SCHEDULED)
    elif _sending_move(email, step, now, deliver_here=deliver_here):
        return _handed_on(email, deliver_here=deliver_here)
    return False


def _sending_move(
    email: Email,
    step: OutboundDecision,
    now: datetime,
    *,
    deliver_here: bool,
    written_with: Mapping[str, Any] | None = None,
) -> bool:
    """Move an email the policy lets leave to ``sending``: a compare-and-set from its
    status as loaded, writing who decided, the delivery's claim when the caller delivers
    it itself (``_claim_fields``), and ``written_with``. False when it had moved on."""
    return lifecycle.email_move(
        email,
        to=EmailStatus.SENDING,
        **lifecycle.routed_by(step.rule, now),
        **_claim_fields(now, deliver_here=deliver_here),
        **(written_with or {}),
    )


def _handed_on(email: Email, *, deliver_here: bool) -> bool:
    """An email that just became ``sending``: its delivery is enqueued for after the commit,
    unless ``deliver_here``, when the caller delivers it once this commits. True unless a
    check of its claim failed it."""
    if not deliver_here:
        enqueue.deliver_email_after_commit(email.pk)
        return True
    # What the claim of a delivery checks (_delivery_claim), under the locks this
    # transaction holds: the mailbox and account rows, FOR NO KEY UPDATE, which the stop
    # switch's FOR UPDATE waits for (and deliveries_in_flight_wait then sees the claim).
    refusal = _delivery_refusal(email)
    if not refusal:
        return True
    lifecycle.email_fail(email=email, reason=refusal)
    return False


def _claim_fields(now: datetime, *, deliver_here: bool) -> dict[str, Any]:
    """What the move to sending writes besides the routing: the delivery's claim, when the
    caller delivers the email itself."""
    return {"delivery_claimed_at": now} if deliver_here else {}


def _lock_sender(mailbox_id: str) -> Mailbox:
    """Lock the sending mailbox and its account (FOR NO KEY UPDATE, one statement), before
    the email row. Every writer on a mailbox takes these two locks first and in this order,
    and the foreign-key checks PostgreSQL runs at commit (rows referencing the mailbox or
    account) are then covered by locks this transaction already holds, so they cannot wait
    in a cycle with another writer."""
    return sender_locked(mailbox_id=mailbox_id)


def _lock_mailboxes(mailbox_ids: set[str]) -> None:
    list(
        Mailbox.objects.select_for_update(no_key=True)
        .select_related("account")
        .filter(pk__in=mailbox_ids)
        .order_by("pk")
    )


def _locked(
    email_id: str, status: str, *, mailbox_id: str | None = None, **filters: Any
) -> Email | None:
    """The email row, locked, if it is still in ``status`` (after its mailbox is locked;
    ``mailbox_id``, when the caller read the email already, saves looking it up)."""
    if mailbox_id is None:
        mailbox_id = Email.objects.filter(pk=email_id).values_list("mailbox_id", flat=True).first()
    if mailbox_id is None:
        return None
    mailbox = _lock_sender(mailbox_id)
    email = (
        Email.objects.select_for_update(of=("self",))
        .filter(pk=email_id, status=status, direction=Direction.OUTBOUND, **filters)
        .first()
    )
    if email is not None:
        email.mailbox = mailbox
        email.account = mailbox.account
    return email


# What the scan writes on the email, besides the status.
SCANNED_FIELDS = (
    "html",
    "text",
    "size_bytes",
    "spam_score",
    "spam_verdict",
    "spam_reasons",
    "content_findings",
)


# The scan's compare-and-set (email_process), compiled once per process: it runs once per
# outbound email.
_SCANNED = CompiledUpdate(
    lambda email_id: Email.objects.filter(pk=email_id, status=EmailStatus.PENDING_SCAN),
    params=("email_id",),
)


def content_scan(email: Email) -> str | None:
    """Render the email's markdown into its html and text parts, score it for spam and run
    the content filter (on the instance, not yet saved: SCANNED_FIELDS); returns the
    rejection reason, if any. The score refuses nothing: it is there for the operator."""
    rendered = markdown_render(markdown=email.markdown)
    email.html, email.text = rendered.html, rendered.text
    email.size_bytes = sum(len(part.encode()) for part in (email.markdown, email.html, email.text))
    attachments = (
        [
            AttachmentInfo(filename=name, content_type=content_type, head=bytes(head or b""))
            for name, content_type, head in email.attachments.annotate(
                head=Substr("content", 1, HEAD_BYTES, output_field=BinaryField())
            ).values_list("filename", "content_type", "head")
        ]
        if email.has_attachments
        else []
    )
    spam = spam_score(
        signals=SpamSignals(
            subject=email.subject,
            body=email.text,
            from_address=email.from_address,
            reply_to="",
            # Both are added when the message is built.
            has_message_id=True,
            has_date=True,
            html_only=False,
            attachment_names=tuple(item.filename for item in attachments),
            attachment_heads=tuple(item.head for item in attachments),
            upstream_flag=False,
            upstream_score=None,
        )
    )
    email.spam_score, email.spam_verdict, email.spam_reasons = (
        spam.score,
        spam.verdict,
        list(spam.reasons),
    )
    report = content_report(
        subject=email.subject, markdown=email.markdown, html=email.html, attachments=attachments
    )
    email.content_findings = list(report.findings)
    return report.rejection


def email_process(*, email_id: str, deliver_here: bool = False) -> Email | None:
    """Render, scan and route a ``pending_scan`` email (the process_email task). The email
    when it became ``sending``, else None. With ``deliver_here`` it is returned claimed, and
    the caller delivers it next, in the same task (``email_deliver_claimed``), instead of a
    delivery task queued behind every other scan."""
    email = email_in_status(email_id=email_id, status=EmailStatus.PENDING_SCAN)
    if email is None:
        return None
    stored_size = email.size_bytes
    # Rendering needs no lock: the content of a pending_scan email does not change.
    reason = content_scan(email)
    scanned = {name: getattr(email, name) for name in SCANNED_FIELDS}
    with transaction.atomic():
        mailbox = _lock_sender(email.mailbox_id)
        email.mailbox, email.account = mailbox, mailbox.account
        now = timezone.now()
        step = _step(email, now) if reason is None else None
        if step is not None and step.outcome == Outcome.SEND:
            # Most mail: the scan's results written with the move to sending, in one UPDATE
            # that is the email's row lock and its compare-and-set.
            if not _sending_move(email, step, now, deliver_here=deliver_here, written_with=scanned):
                return None  # it left pending_scan meanwhile (cancelled, a second task)
            storage_add(account_id=email.account_id, delta=email.size_bytes - stored_size)
            return email if _handed_on(email, deliver_here=deliver_here) else None
        # The scan's UPDATE is the email's row lock and its compare-and-set: an email that
        # left pending_scan meanwhile (cancelled, a second task) matches no row.
        if not _SCANNED.update(scanned, email_id=email_id):
            return None
        storage_add(account_id=email.account_id, delta=email.size_bytes - stored_size)
        if reason is not None:
            lifecycle.email_move(
                email, to=EmailStatus.REJECTED, failure_reason=f"content_rejected: {reason}"
            )
            logger.info("outbound_rejected email=%s reason=%s", email_id, reason)
            return None
        return email if _route(email, now, deliver_here=deliver_here, step=step) else None


def email_release_scheduled(*, email_id: str) -> None:
    """A scheduled email whose send_at has come: approved ones go, others ask the policy."""
    with transaction.atomic():
        email = _locked(email_id, EmailStatus.SCHEDULED, send_at__lte=timezone.now())
        if email is not None:
            _route(email, timezone.now())


def email_release(*, email: Email) -> None:
    """Hand an email the operator just approved to delivery, once the decision commits.
    Approved mail whose send_at is still ahead stays ``scheduled``: beat releases it then
    (``email_release_scheduled``)."""
    if email.status == EmailStatus.SENDING:
        # Not robust, as the decision paths have always been: a broker error reaches the
        # decision's caller after the commit; the sweep still sends the email.
        enqueue.deliver_email_after_commit(email.pk, robust=False)


def sent_message_id(*, email: Email) -> str | None:
    """The provider's id of an email just released, when delivery already ran in this
    process (tasks run in-process, without a broker: they ran at commit). None while a
    worker has it queued: there is no id yet, so the row is not read again."""
    if not enqueue.tasks_run_in_process():
        return None
    email.refresh_from_db(fields=["status", "provider_message_id", "sent_at", "failure_reason"])
    return email.provider_message_id or None


def email_release_scheduled_or_fail(*, email_id: str) -> None:
    """Release one due scheduled email for the beat job: an error in one email (its hold,
    its routing) fails that email, with the operator told, and never stops the others. A
    database error is left for the next run (the email is still due then)."""
    try:
        email_release_scheduled(email_id=email_id)
    except OperationalError:
        logger.warning("scheduled_release_deferred email=%s", email_id, exc_info=True)
    except Exception as error:  # any error of this one email's release
        logger.exception("scheduled_release_failed email=%s", email_id)
        email_send_failed(
            email_id=email_id,
            status=EmailStatus.SCHEDULED,
            reason=f"internal_error: releasing it at its send time failed "
            f"({type(error).__name__}); the server log has the details",
        )


def scheduled_due_ids(*, limit: int = 500) -> list[str]:
    return list(
        Email.objects.filter(status=EmailStatus.SCHEDULED, send_at__lte=timezone.now())
        .order_by("send_at")
        .values_list("pk", flat=True)[:limit]
    )


def stuck_email_ids(*, older_than: timedelta = STUCK_AFTER) -> dict[str, list[str]]:
    """Emails whose task was lost, by the status that says which task to run again."""
    cutoff = timezone.now() - older_than
    rows = Email.objects.filter(
        direction=Direction.OUTBOUND,
        status__in=(EmailStatus.PENDING_SCAN, EmailStatus.SENDING),
        status_changed_at__lt=cutoff,
        status_changed_at__gte=timezone.now() - GIVE_UP_AFTER,
    ).values_list("pk", "status")[:1000]
    found: dict[str, list[str]] = {EmailStatus.PENDING_SCAN: [], EmailStatus.SENDING: []}
    for pk, status in rows:
        found[status].append(pk)
    return found


def stuck_emails_give_up() -> int:
    """Fail every email stuck in a transient status for longer than GIVE_UP_AFTER (the
    sweep requeued it all that time): it becomes send_failed and the operator is told."""
    rows = Email.objects.filter(
        direction=Direction.OUTBOUND,
        status__in=(EmailStatus.PENDING_SCAN, EmailStatus.SENDING),
        status_changed_at__lt=timezone.now() - GIVE_UP_AFTER,
    ).values_list("pk", "status")[:1000]
    hours = int(GIVE_UP_AFTER.total_seconds() // 3600)
    for pk, status in rows:
        email_send_failed(
            email_id=pk,
            status=EmailStatus(status),
            reason=f"stuck: it was still {status} after {hours} hours of retries; the "
            "server log has the errors",
        )
    return len(rows)


def email_deliver(*, email_id: str) -> None:
    """Send a ``sending`` email once (the deliver_email task), holding no lock while the
    provider works.

    Three steps: claim the email (a compare-and-set on ``delivery_claimed_at``, in a short
    transaction that also reads the stop switch), hand the message to the provider, then
    record it ``sent`` (a compare-and-set on the claim) together with the local
    recipients' copies. A second task for the same email (sweep, redelivered message) finds
    it claimed and skips it, and finds it ``sent`` afterwards. A worker killed mid-way
    leaves the claim behind: the sweep's task takes the email again once the claim is older
    than its lease (DELIVERY_CLAIM_LEASE_SECONDS), with nothing delivered locally. The one
    window left is between the provider accepting the message and the record's commit.
    Raises TransientSendError for the task to retry (the claim is given back first).
    """
    email = _delivery_claim(email_id)
    if email is not None:
        email_deliver_claimed(email=email)


def email_deliver_claimed(*, email: Email) -> None:
    """``email_deliver`` of an email this delivery claimed already (``email_process`` with
    ``deliver_here``: the scan's transaction claimed it)."""
    try:
        sent = _delivery_send(email)
    except Exception:
        # Given back, so the task's retry can claim it (the error decides what happens).
        Email.objects.filter(
            pk=email.pk, status=EmailStatus.SENDING, delivery_claimed_at=email.delivery_claimed_at
        ).update(delivery_claimed_at=None)
        raise
    if sent is not None:
        logger.info("outbound_sent email=%s local=%d remote=%d provider_id=%s", email.pk, *sent)


def _claim_lease() -> timedelta:
    """A claim older than this belongs to a delivery that died (the mailer's timeout is
    30 s): the sweep's task, which comes after STUCK_AFTER, may claim the email again."""
    return timedelta(seconds=settings.DELIVERY_CLAIM_LEASE_SECONDS)


# The stop switch waits this long at most for deliveries already past their claim.
IN_FLIGHT_WAIT = timedelta(seconds=30)


# The claim's compare-and-set (_delivery_claim): the sending email still under the claim it
# was read with (none, or one whose lease ran out). It runs once per delivery task, so it
# is compiled once per process.
_CLAIMED = CompiledUpdate(
    lambda email_id, previous: Email.objects.filter(
        pk=email_id, status=EmailStatus.SENDING, delivery_claimed_at=previous
    ),
    params=("email_id", "previous"),
)


def _delivery_claim(email_id: str) -> Email | None:
    """Claim a ``sending`` email for this delivery; None when there is nothing to send (it
    moved on, another delivery has it, it may not leave: failed or held instead)."""
    now = timezone.now()
    with transaction.atomic():
        email = (
            Email.objects.select_related("mailbox", "account")
            .filter(pk=email_id, status=EmailStatus.SENDING, direction=Direction.OUTBOUND)
            .first()
        )
        if email is None:
            return None
        email.mailbox.account = email.account  # one row, read once (the message needs both)
        previous = email.delivery_claimed_at
        if previous is not None and previous > now - _claim_lease():
            return None
        refusal = _delivery_refusal(email)
        if refusal:
            lifecycle.email_fail(email=email, reason=refusal)
            return None
        # The last check before the mail leaves: the stop switch is read under a KEY SHARE
        # lock on the account row, kept until the claim commits. Stopping takes FOR UPDATE
        # on that row, so it waits for a claim under way, then for every claimed delivery
        # to finish (deliveries_in_flight_wait); every claim after it sees the stop.
        if account_sending_stopped(account_id=email.account_id, lock=True):
            lifecycle.email_hold(email=email, reason=STOPPED_HOLD_REASON)
            return None
        claimed = _CLAIMED.update(
            {"delivery_claimed_at": now}, email_id=email_id, previous=previous
        )
    if not claimed:
        return None
    email.delivery_claimed_at = now
    return email


def _delivery_send(email: Email) -> tuple[int, int, str] | None:
    """Build, send and record a claimed email: (local, remote, provider id), or None when
    it could not be built (it failed for good)."""
    copy_operator = outbound_decision(email.mailbox.oversight_mode).copy_operator
    try:
        built = message_build(email=email, copy_operator=copy_operator)
        built.raw  # noqa: B018 (flattened now: whatever the email package refuses, fails here)
    except Exception as error:  # whatever the email package refuses
        # Retrying cannot help: the same content fails the same way. The operator is
        # told, and the agent sees why in the email's failure_reason.
        logger.warning("outbound_unbuildable email=%s error=%r", email.pk, error)
        lifecycle.email_fail(
            email=email,
            reason=f"message_unbuildable: the message could not be built ({error})",
        )
        return None
    recipients = built.recipients
    local_mailboxes = mailbox_ids_at(addresses=[a.lower() for a in recipients])
    local = [a for a in recipients if a.lower() in local_mailboxes]
    remote = [a for a in recipients if a.lower() not in local_mailboxes]
    raw = built.raw  # before provider_send narrows the message's recipients
    provider_id = provider_send(built, remote) if remote else ""
    with transaction.atomic():
        if local:
            # The sender's and the local recipients' mailboxes, in id order, so two
            # deliveries between the same mailboxes cannot wait on each other in a cycle.
            # They also cover the foreign-key checks PostgreSQL runs at commit.
            _lock_mailboxes({email.mailbox_id, *local_mailboxes.values()})
            inbound_receive(raw=raw, recipients=local, source="local")
        if not lifecycle.email_mark_sent(
            email=email, provider_message_id=provider_id, claimed_at=email.delivery_claimed_at
        ):
            # Its claim ran out and another delivery took it over: that one records it.
            logger.warning("outbound_claim_lost email=%s", email.pk)
            return None
        correspondents_record(
            account_id=email.account_id,
            direction=Direction.OUTBOUND,
            addresses=recipients,
            email_id=email.pk,
        )
    return len(local), len(remote), provider_id


def deliveries_in_flight_wait(*, account_id: str) -> bool:
    """Wait until no delivery of the account is between its claim and its record (the stop
    switch: once it returns, nothing more leaves). True when none is left; False when one
    is still claimed after IN_FLIGHT_WAIT (its worker most likely died: the mail has not
    left, and whoever claims it next sees the stop)."""
    deadline = time.monotonic() + IN_FLIGHT_WAIT.total_seconds()
    while True:
        in_flight = Email.objects.filter(
            account_id=account_id,
            status=EmailStatus.SENDING,
            delivery_claimed_at__gt=timezone.now() - _claim_lease(),
        ).exists()
        if not in_flight:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _delivery_refusal(email: Email) -> str:
    """Why a ``sending`` email must not leave now ("" when it may): the mailbox was deleted,
    the account may not send, or it is not the version the operator approved."""
    account = email.account
    if not email.mailbox.is_active:
        return "mailbox deleted: a deleted mailbox sends nothing"
    if not account.is_active:
        return f"account_deactivated: {account.deactivated_reason or 'the account is deactivated'}"
    if account.sending_disabled:
        return f"sending_disabled: {account.sending_disabled_reason or 'enforcement action'}"
    if email.approved_version and email.approved_version != email_version_read(email=email):
        return (
            "changed_after_approval: the email or its mailbox's sender settings changed "
            "after the operator approved it, so it was not sent. Retry it from the console "
            "to have the current version approved."
        )
    return ""


def email_attempt_count(*, email_id: str) -> None:
    Email.objects.filter(pk=email_id, status=EmailStatus.SENDING).update(
        send_attempts=F("send_attempts") + 1
    )


def email_send_failed(
    *, email_id: str, reason: str, status: EmailStatus = EmailStatus.SENDING
) -> None:
    """Give up on an email still in ``status``: a permanent provider refusal, retries
    exhausted, or a step that kept failing (its scan, its release, its delivery). The
    lifecycle tells the operator."""
    with transaction.atomic():
        email = _locked(email_id, status)
        if email is not None:
            lifecycle.email_fail(email=email, reason=reason)
    logger.warning("outbound_failed email=%s reason=%s", email_id, reason)
