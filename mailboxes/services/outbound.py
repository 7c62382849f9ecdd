"""Outbound mail: accepting a send or reply, the pipeline after it, and delivery.

Accept (``email_accept``) runs in the request: every check that can refuse the email, then
the email is stored as ``pending_scan`` and ``process_email`` is enqueued after commit.
``email_process`` renders and scans it and asks the oversight policy; ``email_deliver``
builds the MIME message, hands copies for this server's own mailboxes to the inbound
service and the rest to the configured mailer.

Every status change is a compare-and-set on the old status (or happens under a row lock
after re-reading the status), so a task that runs twice, or a sweep that re-enqueues an
email already moving on, changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import smtplib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import formataddr, formatdate, getaddresses, make_msgid
from typing import Any

from anymail.backends.base import AnymailBaseBackend
from anymail.exceptions import AnymailError, AnymailRequestsAPIError
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, mailers
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.html import escape, linebreaks

from accounts.actors import Actor
from accounts.models import Account
from billing.periods import current_period
from mailboxes import enqueue, lifecycle
from mailboxes.models import (
    Attachment,
    Direction,
    Email,
    EmailStatus,
    GateTiming,
    Mailbox,
    Suppression,
)
from mailboxes.quotas import send_limits_claim, storage_add
from mailboxes.services import compliance
from mailboxes.services.content_filter import AttachmentInfo, content_check
from mailboxes.services.inbound import inbound_receive
from mailboxes.services.mailboxes import mailbox_get
from mailboxes.services.rendering import markdown_render
from multimail.errors import ApiError, not_found
from multimail.ids import new_id
from oversight.policy import (
    Outcome,
    agent_can_read_content,
    ensure_can_send,
    outbound_decision,
    outbound_step,
)

logger = logging.getLogger("multimail.outbound")

MAX_ATTACHMENTS_BYTES = 10 * 1024 * 1024
DUPLICATE_WINDOW = timedelta(seconds=60)
IDEMPOTENCY_WINDOW = timedelta(hours=24)
# An email in pending_scan or sending for longer than this lost its task (worker killed,
# broker restarted): the sweep enqueues it again.
STUCK_AFTER = timedelta(minutes=3)
# Counted against neither the duplicate check nor the quotas: they never left.
_REFUSED = (EmailStatus.REJECTED, EmailStatus.CANCELLED)


@dataclass(frozen=True, slots=True)
class OutgoingAttachment:
    name: str
    content_type: str
    content: bytes


@dataclass(frozen=True, slots=True)
class Accepted:
    email: Email
    replayed: bool


class TransientSendError(Exception):
    """The provider or relay failed in a way worth retrying (5xx, timeout, connection)."""


class PermanentSendError(Exception):
    """The provider refused the message; retrying would fail the same way."""


# --- accept ----------------------------------------------------------------------------


def content_hash(
    *, to: Sequence[str], cc: Sequence[str], bcc: Sequence[str], subject: str, markdown: str
) -> str:
    """What the 60-second duplicate check compares: recipients (any order), subject, body."""
    canonical = json.dumps(
        {
            "to": sorted(a.lower() for a in to),
            "cc": sorted(a.lower() for a in cc),
            "bcc": sorted(a.lower() for a in bcc),
            "subject": subject,
            "markdown": markdown,
        },
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _bare_addresses(values: Sequence[str]) -> list[str]:
    return [address for _, address in getaddresses(list(values)) if "@" in address]


def _reply_subject(subject: str) -> str:
    return subject if subject.lower().startswith("re:") else f"Re: {subject}".strip()


def _reply_recipients(original: Email) -> list[str]:
    if original.direction == Direction.OUTBOUND:
        return list(original.to)
    reply_to = next(
        (value for name, value in original.headers.items() if name.lower() == "reply-to"), None
    )
    candidates = _bare_addresses([reply_to]) if isinstance(reply_to, str) else []
    return candidates or _bare_addresses([original.from_address])


def _suppressed(account: Account, recipients: Sequence[str]) -> list[str]:
    lowered = {address.lower() for address in recipients}
    return sorted(
        Suppression.objects.filter(account=account, email_address__in=lowered)
        .order_by()  # sorted here: the database need not
        .values_list("email_address", flat=True)
    )


def email_accept(
    *,
    actor: Actor,
    mailbox_id: str,
    markdown: str,
    to: Sequence[str] = (),
    cc: Sequence[str] = (),
    bcc: Sequence[str] = (),
    subject: str = "",
    attachments: Sequence[OutgoingAttachment] = (),
    idempotency_key: str | None = None,
    send_at: datetime | None = None,
    gate_timing: str | None = None,
    reply_to_email_id: str | None = None,
) -> Accepted:
    """Store an outbound email (a send, or a reply when ``reply_to_email_id`` is given)."""
    attachment_bytes = sum(len(item.content) for item in attachments)
    if attachment_bytes > MAX_ATTACHMENTS_BYTES:
        raise ApiError(
            "payload_too_large",
            f"Attachments total {attachment_bytes} bytes; the limit is {MAX_ATTACHMENTS_BYTES} "
            "bytes combined. Send fewer or smaller files.",
            param="attachments",
            limit_bytes=MAX_ATTACHMENTS_BYTES,
        )
    # Read before the row locks below, which serialize the account's sends: the quota period
    # (a subscription query on paid plans) and, for a send, which recipients are suppressed.
    # Neither needs the lock; the shorter the locked section, the more sends an account makes.
    period = current_period(actor.account)
    suppressed = None if reply_to_email_id else _suppressed(actor.account, [*to, *cc, *bcc])
    with transaction.atomic():
        # The mailbox and account rows stay locked until commit: the quota counts and the
        # insert below are one step, so concurrent sends cannot overshoot a limit.
        mailbox = mailbox_get(account=actor.account, mailbox_id=mailbox_id, for_update=True)
        account = mailbox.account
        now = timezone.now()

        if idempotency_key:
            # A replay answers with the id and thread only: the bodies are not loaded.
            existing = (
                Email.objects.filter(mailbox=mailbox, idempotency_key=idempotency_key)
                .only("pk", "received_at", "thread_id")
                .first()
            )
            if existing is not None and existing.received_at >= now - IDEMPOTENCY_WINDOW:
                return Accepted(email=existing, replayed=True)
            if existing is not None:  # the key expired: free it for this new email
                Email.objects.filter(pk=existing.pk).update(idempotency_key=None)

        ensure_can_send(mailbox.oversight_mode)
        if account.sending_disabled:
            raise ApiError(
                "sending_disabled",
                "Sending is disabled for this account: "
                f"{account.sending_disabled_reason or 'enforcement action'}. Fix the cause and "
                "contact support to re-enable it.",
                reason=account.sending_disabled_reason or "enforcement action",
            )
        if send_at is not None and not mailbox.scheduling_enabled:
            raise ApiError(
                "validation_error",
                "Scheduling is turned off for this mailbox. Send without send_at, or enable "
                "it with PATCH /v1/mailboxes/{id}/configure (scheduling_enabled: 1).",
                param="send_at",
            )

        in_reply_to = references = ""
        thread_id = new_id()
        if reply_to_email_id is not None:
            original = Email.objects.filter(mailbox=mailbox, pk=reply_to_email_id).first()
            if original is None or not agent_can_read_content(original):
                raise not_found("email")
            to = _reply_recipients(original)
            if not to:
                raise ApiError(
                    "validation_error",
                    "The email you reply to has no sender address to answer. Use "
                    "POST /v1/mailboxes/{id}/send with an explicit to instead.",
                    param="email_id",
                )
            subject = _reply_subject(original.subject)
            in_reply_to = original.message_id
            references = " ".join(filter(None, [original.references, original.message_id]))
            thread_id = original.thread_id or thread_id

        if suppressed is None:  # a reply: its recipients come from the original
            suppressed = _suppressed(account, [*to, *cc, *bcc])
        if suppressed:
            raise ApiError(
                "recipient_suppressed",
                f"These recipients are on the suppression list: {', '.join(suppressed)}. "
                "Remove them, or check GET /v1/suppression.",
                suppressed=suppressed,
            )

        digest = content_hash(to=to, cc=cc, bcc=bcc, subject=subject, markdown=markdown)
        if not idempotency_key:
            # Only the id: the row itself (bodies included) is of no use here.
            duplicate_id = (
                Email.objects.filter(
                    mailbox=mailbox,
                    direction=Direction.OUTBOUND,
                    content_hash=digest,
                    received_at__gte=now - DUPLICATE_WINDOW,
                )
                .exclude(status__in=_REFUSED)
                .values_list("pk", flat=True)
                .first()
            )
            if duplicate_id is not None:
                raise ApiError(
                    "duplicate_email",
                    "An identical email (same recipients, subject and body) left this mailbox "
                    "in the last 60 seconds. Wait, or pass idempotency_key for intentional "
                    "retries.",
                    original_id=duplicate_id,
                )

        body_bytes = len(markdown.encode())
        send_limits_claim(
            account=account,
            mailbox=mailbox,
            adding_bytes=body_bytes + attachment_bytes,
            period=period,
        )

        domain = mailbox.address.rpartition("@")[2]
        email = lifecycle.email_create(
            account=account,
            mailbox=mailbox,
            direction=Direction.OUTBOUND,
            status=EmailStatus.PENDING_SCAN,
            from_address=mailbox.address,
            to=list(to),
            cc=list(cc),
            bcc=list(bcc),
            subject=subject,
            markdown=markdown,
            message_id=make_msgid(domain=domain),
            in_reply_to=in_reply_to,
            references=references,
            thread_id=thread_id,
            send_at=send_at,
            gate_timing=gate_timing or mailbox.default_gate_timing,
            has_attachments=bool(attachments),
            size_bytes=body_bytes,
            idempotency_key=idempotency_key or None,
            content_hash=digest,
        )
        Attachment.objects.bulk_create(
            Attachment(
                email=email,
                filename=item.name,
                content_type=item.content_type,
                size=len(item.content),
                content=item.content,
            )
            for item in attachments
        )
        enqueue.process_email_after_commit(email.pk)
    logger.info("outbound_accepted email=%s mailbox=%s", email.pk, mailbox.pk)
    return Accepted(email=email, replayed=False)


# --- pipeline --------------------------------------------------------------------------


def _route(email: Email, now: datetime) -> None:
    """Ask the policy where an email (scanned, or scheduled and due) goes next. The caller
    holds the email's row lock."""
    step = outbound_step(email, email.mailbox.oversight_mode, now=now)
    if step.outcome == Outcome.REFUSE:
        lifecycle.email_move(
            email,
            to=EmailStatus.REJECTED,
            failure_reason="mailbox_read_only: the mailbox became read_only before the email "
            "was sent",
        )
    elif step.outcome == Outcome.HOLD:
        lifecycle.email_hold(email=email)
    elif step.outcome == Outcome.WAIT:
        lifecycle.email_move(email, to=EmailStatus.SCHEDULED)
    elif lifecycle.email_move(email, to=EmailStatus.SENDING):
        enqueue.deliver_email_after_commit(email.pk)


def _lock_sender(mailbox_id: str) -> Mailbox:
    """Lock the sending mailbox and its account (FOR NO KEY UPDATE, one statement), before
    the email row. Every writer on a mailbox takes these two locks first and in this order,
    and the foreign-key checks PostgreSQL runs at commit (rows referencing the mailbox or
    account) are then covered by locks this transaction already holds, so they cannot wait
    in a cycle with another writer."""
    return (
        Mailbox.objects.select_for_update(no_key=True).select_related("account").get(pk=mailbox_id)
    )


def _lock_mailboxes(mailbox_ids: set[str]) -> None:
    list(
        Mailbox.objects.select_for_update(no_key=True)
        .select_related("account")
        .filter(pk__in=mailbox_ids)
        .order_by("pk")
    )


def _locked(email_id: str, status: str, **filters: Any) -> Email | None:
    """The email row, locked, if it is still in ``status`` (after its mailbox is locked)."""
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


def _scan(email: Email) -> str | None:
    """Render the email's markdown into its html and text parts (on the instance, not yet
    saved) and run the content filter; returns the rejection reason, if any."""
    rendered = markdown_render(markdown=email.markdown)
    email.html, email.text = rendered.html, rendered.text
    email.size_bytes = sum(len(part.encode()) for part in (email.markdown, email.html, email.text))
    attachments = [
        AttachmentInfo(filename=name, content_type=content_type)
        for name, content_type in email.attachments.values_list("filename", "content_type")
    ]
    return content_check(
        subject=email.subject, markdown=email.markdown, html=email.html, attachments=attachments
    )


def email_process(*, email_id: str) -> None:
    """Render, scan and route a ``pending_scan`` email (the process_email task)."""
    email = Email.objects.filter(pk=email_id, status=EmailStatus.PENDING_SCAN).first()
    if email is None:
        return
    # Rendering needs no lock: the content of a pending_scan email does not change.
    reason = _scan(email)
    with transaction.atomic():
        locked = _locked(email_id, EmailStatus.PENDING_SCAN)
        if locked is None:
            return
        grown = email.size_bytes - locked.size_bytes
        locked.html, locked.text, locked.size_bytes = email.html, email.text, email.size_bytes
        locked.save(update_fields=["html", "text", "size_bytes"])
        storage_add(account_id=locked.account_id, delta=grown)
        if reason is not None:
            lifecycle.email_move(
                locked, to=EmailStatus.REJECTED, failure_reason=f"content_rejected: {reason}"
            )
            logger.info("outbound_rejected email=%s reason=%s", email_id, reason)
            return
        _route(locked, timezone.now())


def email_release_scheduled(*, email_id: str) -> None:
    """A scheduled email whose send_at has come: approved ones go, others ask the policy."""
    with transaction.atomic():
        email = _locked(email_id, EmailStatus.SCHEDULED, send_at__lte=timezone.now())
        if email is not None:
            _route(email, timezone.now())


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
    ).values_list("pk", "status")[:1000]
    found: dict[str, list[str]] = {EmailStatus.PENDING_SCAN: [], EmailStatus.SENDING: []}
    for pk, status in rows:
        found[status].append(pk)
    return found


# --- delivery --------------------------------------------------------------------------


def _unique(addresses: Sequence[str], exclude: set[str] | None = None) -> list[str]:
    seen = set(exclude or ())
    result = []
    for address in addresses:
        key = address.lower()
        if address and key not in seen:
            seen.add(key)
            result.append(address)
    return result


def _footer_html(footer: str) -> str:
    return f'<hr><div class="mm-footer">{linebreaks(escape(footer))}</div>'


@dataclass(frozen=True, slots=True)
class BuiltMessage:
    message: EmailMultiAlternatives
    to: list[str]
    cc: list[str]
    bcc: list[str]

    @property
    def recipients(self) -> list[str]:
        return _unique([*self.to, *self.cc, *self.bcc])


def message_build(*, email: Email, copy_operator: bool) -> BuiltMessage:
    """The MIME message as every recipient sees it (Bcc is never a header)."""
    mailbox = email.mailbox
    to = _unique(email.to)
    cc = _unique(
        [*email.cc, *([mailbox.auto_cc] if mailbox.auto_cc else [])], set(map(str.lower, to))
    )
    operator_copy = [email.account.oversight_email] if copy_operator else []
    bcc = _unique(
        [*email.bcc, *([mailbox.auto_bcc] if mailbox.auto_bcc else []), *operator_copy],
        {a.lower() for a in [*to, *cc]},
    )
    headers = {
        "Message-ID": email.message_id,
        "Date": formatdate(usegmt=True),
        **compliance.outbound_headers(email=email),
    }
    if email.in_reply_to:
        headers["In-Reply-To"] = email.in_reply_to
    if email.references:
        headers["References"] = email.references
    footer = compliance.footer_text(mailbox=mailbox)
    text = email.text or email.markdown
    html = email.html
    if footer:
        text = f"{text.rstrip()}\n\n-- \n{footer}\n"
        html = f"{html}{_footer_html(footer)}"
    message = EmailMultiAlternatives(
        subject=email.subject,
        body=text,
        from_email=formataddr((mailbox.display_name, mailbox.address))
        if mailbox.display_name
        else mailbox.address,
        to=to,
        cc=cc,
        bcc=bcc,
        headers=headers,
    )
    if html:
        message.attach_alternative(html, "text/html")
    for attachment in email.attachments.all():
        message.attach(attachment.filename, bytes(attachment.content), attachment.content_type)
    # ESPs echo metadata on their delivery events: that is how bounces find this email
    # (services.delivery_events), sturdier than matching provider message ids.
    message.metadata = {"email_id": email.pk}  # type: ignore[attr-defined]
    return BuiltMessage(message=message, to=to, cc=cc, bcc=bcc)


def _send_remote(built: BuiltMessage, remote: list[str]) -> str:
    """Send through the configured mailer to ``remote`` only; returns the provider's id."""
    connection = mailers["default"]
    message = built.message
    remote_set = {address.lower() for address in remote}
    if isinstance(connection, AnymailBaseBackend):
        # ESP APIs take the header recipients as the delivery list: local recipients are
        # left out (they already have their copy), and Postmark needs the message stream.
        message.to = [a for a in built.to if a.lower() in remote_set]
        message.cc = [a for a in built.cc if a.lower() in remote_set]
        message.bcc = [a for a in built.bcc if a.lower() in remote_set]
        message.esp_extra = {"MessageStream": settings.POSTMARK_MESSAGE_STREAM}  # type: ignore[attr-defined]
    else:
        # SMTP-style backends send to message.recipients() but print the To/Cc headers as
        # given: everyone sees the full recipient lists, only remote ones get this copy.
        if built.to:
            message.extra_headers["To"] = ", ".join(built.to)
        if built.cc:
            message.extra_headers["Cc"] = ", ".join(built.cc)
        message.to = [a for a in built.to if a.lower() in remote_set]
        message.cc = [a for a in built.cc if a.lower() in remote_set]
        message.bcc = [a for a in built.bcc if a.lower() in remote_set]
    try:
        accepted = connection.send_messages([message])
    except AnymailRequestsAPIError as error:
        if error.status_code is None or error.status_code >= 500 or error.status_code == 429:
            raise TransientSendError(str(error)) from error
        raise PermanentSendError(str(error)) from error
    except AnymailError as error:
        raise PermanentSendError(str(error)) from error
    except smtplib.SMTPResponseException as error:
        if 400 <= error.smtp_code < 500:
            raise TransientSendError(f"{error.smtp_code} {error.smtp_error!r}") from error
        raise PermanentSendError(f"{error.smtp_code} {error.smtp_error!r}") from error
    except smtplib.SMTPRecipientsRefused as error:
        raise PermanentSendError(f"recipients refused: {sorted(error.recipients)}") from error
    except (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, OSError) as error:
        raise TransientSendError(f"{type(error).__name__}: {error}") from error
    if not accepted:
        # A mailer that sent nothing without raising (fail-silent backends) must not let the
        # email be marked sent: retry it like any other transient failure.
        raise TransientSendError("the mailer reported that it sent nothing")
    status = getattr(message, "anymail_status", None)
    provider_id = getattr(status, "message_id", None)
    if isinstance(provider_id, set):
        provider_id = ",".join(sorted(str(item) for item in provider_id if item))
    return "" if provider_id is None else str(provider_id)


def email_deliver(*, email_id: str) -> None:
    """Send a ``sending`` email once (the deliver_email task).

    The row stays locked from reading ``sending`` to writing ``sent``: a second task for
    the same email (sweep, redelivered message) skips it while this one works, and finds
    it ``sent`` afterwards. Local recipients get their copy in the same transaction, so a
    worker killed mid-way leaves the email ``sending`` with nothing delivered; the sweep
    then sends it again, once. The one window left is between the provider accepting the
    message and this commit. Raises TransientSendError for the task to retry.
    """
    with transaction.atomic():
        email = (
            Email.objects.select_for_update(of=("self",), skip_locked=True)
            .select_related("mailbox", "account")
            .filter(pk=email_id, status=EmailStatus.SENDING, direction=Direction.OUTBOUND)
            .first()
        )
        if email is None:
            return
        account = email.account
        if not email.mailbox.is_active:
            lifecycle.email_move(
                email,
                to=EmailStatus.SEND_FAILED,
                failure_reason="mailbox deleted: a deleted mailbox sends nothing",
            )
            return
        if account.sending_disabled:
            lifecycle.email_move(
                email,
                to=EmailStatus.SEND_FAILED,
                failure_reason=f"sending_disabled: {account.sending_disabled_reason}",
            )
            return
        copy_operator = outbound_decision(email.mailbox.oversight_mode).copy_operator
        built = message_build(email=email, copy_operator=copy_operator)
        recipients = built.recipients
        local_mailboxes = dict(
            Mailbox.objects.filter(
                address__in=[a.lower() for a in recipients], is_active=True
            ).values_list("address", "pk")
        )
        local = [a for a in recipients if a.lower() in local_mailboxes]
        remote = [a for a in recipients if a.lower() not in local_mailboxes]
        raw = built.message.message().as_bytes()  # before _send_remote narrows the copy
        provider_id = _send_remote(built, remote) if remote else ""
        # Locks taken only after the provider call (a slow provider holds up nobody): the
        # sender's and the local recipients' mailboxes, in id order, so two deliveries
        # between the same mailboxes cannot wait on each other in a cycle. They also cover
        # the foreign-key checks PostgreSQL runs at commit.
        _lock_mailboxes({email.mailbox_id, *local_mailboxes.values()})
        if local:
            inbound_receive(raw=raw, recipients=local, source="local")
        lifecycle.email_mark_sent(email=email, provider_message_id=provider_id)
    logger.info(
        "outbound_sent email=%s local=%d remote=%d provider_id=%s",
        email_id,
        len(local),
        len(remote),
        provider_id,
    )


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
    email.refresh_from_db(fields=["status", "provider_message_id", "sent_at"])
    return email.provider_message_id or None


def email_attempt_count(*, email_id: str) -> None:
    Email.objects.filter(pk=email_id, status=EmailStatus.SENDING).update(
        send_attempts=F("send_attempts") + 1
    )


def email_send_failed(*, email_id: str, reason: str) -> None:
    """Give up on an email: permanent provider refusal, or retries exhausted."""
    with transaction.atomic():
        email = _locked(email_id, EmailStatus.SENDING)
        if email is not None:
            lifecycle.email_move(email, to=EmailStatus.SEND_FAILED, failure_reason=reason[:2000])
    logger.warning("outbound_failed email=%s reason=%s", email_id, reason)


# --- schedule edits --------------------------------------------------------------------

CONTENT_FIELDS = ("to", "cc", "bcc", "subject", "markdown")


@transaction.atomic
def email_schedule_update(
    *, actor: Actor, mailbox_id: str, email_id: str, changes: dict[str, Any]
) -> Email:
    """Edit a scheduled email (or a gate_first one still waiting for approval). New content
    is scanned again; approved content is frozen, only its send_at may move."""
    mailbox = mailbox_get(account=actor.account, mailbox_id=mailbox_id, for_update=True)
    email = (
        Email.objects.select_for_update(of=("self",))
        .select_related("mailbox", "account")
        .filter(mailbox=mailbox, pk=email_id, direction=Direction.OUTBOUND)
        .first()
    )
    if email is None:
        raise not_found("email")
    editable = email.status == EmailStatus.SCHEDULED or (
        email.status == EmailStatus.PENDING_SEND_APPROVAL
        and email.gate_timing == GateTiming.GATE_FIRST
        and email.send_at is not None
        and email.approved_at is None
    )
    if not editable:
        raise ApiError(
            "conflict",
            f"Only scheduled emails can be edited; this one is {email.status}. Cancel it and "
            "send a new one instead.",
        )
    content = {name: changes[name] for name in CONTENT_FIELDS if name in changes}
    if content and email.approved_at is not None:
        raise ApiError(
            "conflict",
            "The operator already approved this email's recipients and content; only send_at "
            "can change. Cancel it and send a new one to change the content.",
        )
    fields: dict[str, Any] = {}
    if "send_at" in changes:
        fields["send_at"] = changes["send_at"]
    if content:
        recipients = {
            name: list(content.get(name, getattr(email, name))) for name in ("to", "cc", "bcc")
        }
        suppressed = _suppressed(
            email.account, [*recipients["to"], *recipients["cc"], *recipients["bcc"]]
        )
        if suppressed:
            raise ApiError(
                "recipient_suppressed",
                f"These recipients are on the suppression list: {', '.join(suppressed)}.",
                suppressed=suppressed,
            )
        fields.update(content)
        fields["content_hash"] = content_hash(
            to=recipients["to"],
            cc=recipients["cc"],
            bcc=recipients["bcc"],
            subject=content.get("subject", email.subject),
            markdown=content.get("markdown", email.markdown),
        )
        stored_before = email.size_bytes
        for name, value in fields.items():
            setattr(email, name, value)
        # Scanned again now: refused content leaves the scheduled email as it was, and the
        # agent can correct it. The status stays: a held email stays in front of the
        # operator, who sees (and approves) the current content on the approval page.
        reason = _scan(email)
        if reason is not None:
            raise ApiError(
                "content_rejected",
                f"The new content was refused by the content filter: {reason}. The scheduled "
                "email is unchanged; correct the content and try again.",
                reason=reason,
            )
        email.save(update_fields=[*fields, "html", "text", "size_bytes"])
        storage_add(account_id=email.account_id, delta=email.size_bytes - stored_before)
        return email
    if fields:
        Email.objects.filter(pk=email.pk).update(**fields)
        for name, value in fields.items():
            setattr(email, name, value)
    return email
