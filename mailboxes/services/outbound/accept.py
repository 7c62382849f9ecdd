"""Accepting a send or a reply: every check that can refuse it, in the request.

``email_accept`` runs the checks in order (each a small function below that raises the
catalog error), stores the email as ``pending_scan`` and enqueues the pipeline's scan
after commit (services.outbound.pipeline).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import getaddresses, make_msgid

from django.db import transaction
from django.utils import timezone

from accounts.actors import Actor
from accounts.models import Account, ApiKey
from billing.periods import current_period
from mailboxes import enqueue, lifecycle
from mailboxes.models import Attachment, Direction, Email, EmailStatus, Mailbox, Suppression
from mailboxes.quotas import send_limits_claim
from mailboxes.selectors import recent_send_id
from mailboxes.services.mailboxes import mailbox_get
from multimail.errors import ApiError, not_found
from multimail.ids import new_id
from oversight.policy import agent_can_read_content, ensure_can_send

logger = logging.getLogger("multimail.outbound")

MAX_ATTACHMENTS_BYTES = 10 * 1024 * 1024
DUPLICATE_WINDOW = timedelta(seconds=60)
IDEMPOTENCY_WINDOW = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class OutgoingAttachment:
    name: str
    content_type: str
    content: bytes


@dataclass(frozen=True, slots=True)
class Accepted:
    email: Email
    replayed: bool


@dataclass(frozen=True, slots=True)
class _Envelope:
    """Who the email goes to, its subject, and the thread it belongs to."""

    to: list[str]
    cc: list[str]
    bcc: list[str]
    subject: str
    in_reply_to: str = ""
    references: str = ""
    thread_id: str = field(default_factory=new_id)

    @property
    def recipients(self) -> list[str]:
        return [*self.to, *self.cc, *self.bcc]


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


def suppressed_recipients(account: Account, recipients: Sequence[str]) -> list[str]:
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
    attachment_bytes = _attachments_within_limit(attachments)
    # A send's recipients are suppressed (rarely): which of them is read only then.
    suppressed_among = (
        None if reply_to_email_id else {address.lower() for address in [*to, *cc, *bcc]}
    )
    with transaction.atomic():
        # The mailbox and account rows stay locked until commit: the quota counts and the
        # insert below are one step, so concurrent sends cannot overshoot a limit. The same
        # statement reads, unlocked, what needs no lock: the account's subscription (its
        # quota period on paid plans) and whether a send's recipients are suppressed. The
        # fewer statements under the lock, the more sends an account makes.
        mailbox = mailbox_get(
            account=actor.account,
            mailbox_id=mailbox_id,
            for_update=True,
            with_subscription=True,
            suppressed_among=suppressed_among,
        )
        now = timezone.now()
        replayed = _idempotent_replay(mailbox, idempotency_key, now=now)
        if replayed is not None:
            return Accepted(email=replayed, replayed=True)
        _ensure_mailbox_can_send(mailbox, scheduled=send_at is not None)
        if reply_to_email_id is None:
            envelope = _Envelope(to=list(to), cc=list(cc), bcc=list(bcc), subject=subject)
            any_suppressed: bool = mailbox.any_suppressed  # type: ignore[attr-defined]
            suppressed = (
                suppressed_recipients(mailbox.account, envelope.recipients)
                if any_suppressed
                else []
            )
        else:
            envelope = _reply_envelope(mailbox, reply_to_email_id, cc=cc, bcc=bcc)
            # A reply's recipients come from the original, read only now.
            suppressed = suppressed_recipients(mailbox.account, envelope.recipients)
        _ensure_not_suppressed(suppressed)
        digest = content_hash(
            to=envelope.to,
            cc=envelope.cc,
            bcc=envelope.bcc,
            subject=envelope.subject,
            markdown=markdown,
        )
        if not idempotency_key:
            _ensure_not_duplicate(mailbox, digest, now=now)
        body_bytes = len(markdown.encode())
        send_limits_claim(
            account=mailbox.account,
            mailbox=mailbox,
            adding_bytes=body_bytes + attachment_bytes,
            period=current_period(mailbox.account),
        )
        email = _store(
            mailbox,
            envelope,
            markdown=markdown,
            attachments=attachments,
            send_at=send_at,
            gate_timing=gate_timing or mailbox.default_gate_timing,
            idempotency_key=idempotency_key or None,
            digest=digest,
            sent_by_key=actor.api_key,
        )
        enqueue.process_email_after_commit(email.pk)
    logger.info("outbound_accepted email=%s mailbox=%s", email.pk, mailbox.pk)
    return Accepted(email=email, replayed=False)


def _attachments_within_limit(attachments: Sequence[OutgoingAttachment]) -> int:
    """The attachments' total size, refused above the combined limit."""
    attachment_bytes = sum(len(item.content) for item in attachments)
    if attachment_bytes > MAX_ATTACHMENTS_BYTES:
        raise ApiError(
            "payload_too_large",
            f"Attachments total {attachment_bytes} bytes; the limit is {MAX_ATTACHMENTS_BYTES} "
            "bytes combined. Send fewer or smaller files.",
            param="attachments",
            limit_bytes=MAX_ATTACHMENTS_BYTES,
        )
    return attachment_bytes


def _idempotent_replay(mailbox: Mailbox, key: str | None, *, now: datetime) -> Email | None:
    """The email an earlier request with this idempotency key stored, within 24 hours."""
    if not key:
        return None
    # A replay answers with the id and thread only: the bodies are not loaded.
    existing = (
        Email.objects.filter(mailbox=mailbox, idempotency_key=key)
        .only("pk", "received_at", "thread_id")
        .first()
    )
    if existing is not None and existing.received_at >= now - IDEMPOTENCY_WINDOW:
        return existing
    if existing is not None:  # the key expired: free it for this new email
        Email.objects.filter(pk=existing.pk).update(idempotency_key=None)
    return None


def _ensure_mailbox_can_send(mailbox: Mailbox, *, scheduled: bool) -> None:
    """The mode allows outbound mail, the account may send, and scheduling is on if asked."""
    ensure_can_send(mailbox.oversight_mode)
    account = mailbox.account
    if account.sending_disabled:
        raise ApiError(
            "sending_disabled",
            "Sending is disabled for this account: "
            f"{account.sending_disabled_reason or 'enforcement action'}. Fix the cause and "
            "contact support to re-enable it.",
            reason=account.sending_disabled_reason or "enforcement action",
        )
    if scheduled and not mailbox.scheduling_enabled:
        raise ApiError(
            "validation_error",
            "Scheduling is turned off for this mailbox. Send without send_at, or enable "
            "it with PATCH /v1/mailboxes/{id}/configure (scheduling_enabled: 1).",
            param="send_at",
        )


def _reply_envelope(
    mailbox: Mailbox, original_id: str, *, cc: Sequence[str], bcc: Sequence[str]
) -> _Envelope:
    """A reply goes to the original's sender (or Reply-To), in its thread, with "Re:"."""
    original = Email.objects.filter(mailbox=mailbox, pk=original_id).first()
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
    return _Envelope(
        to=to,
        cc=list(cc),
        bcc=list(bcc),
        subject=_reply_subject(original.subject),
        in_reply_to=original.message_id,
        references=" ".join(filter(None, [original.references, original.message_id])),
        thread_id=original.thread_id or new_id(),
    )


def _ensure_not_suppressed(suppressed: list[str]) -> None:
    if suppressed:
        raise ApiError(
            "recipient_suppressed",
            f"These recipients are on the suppression list: {', '.join(suppressed)}. "
            "Remove them, or check GET /v1/suppression.",
            suppressed=suppressed,
        )


def _ensure_not_duplicate(mailbox: Mailbox, digest: str, *, now: datetime) -> None:
    """No identical email left this mailbox in the last 60 seconds (without a key)."""
    duplicate_id = recent_send_id(
        mailbox_id=mailbox.pk, content_hash=digest, since=now - DUPLICATE_WINDOW
    )
    if duplicate_id is not None:
        raise ApiError(
            "duplicate_email",
            "An identical email (same recipients, subject and body) left this mailbox "
            "in the last 60 seconds. Wait, or pass idempotency_key for intentional "
            "retries.",
            original_id=duplicate_id,
        )


def _store(
    mailbox: Mailbox,
    envelope: _Envelope,
    *,
    markdown: str,
    attachments: Sequence[OutgoingAttachment],
    send_at: datetime | None,
    gate_timing: str,
    idempotency_key: str | None,
    digest: str,
    sent_by_key: ApiKey | None,
) -> Email:
    """The email, as ``pending_scan``, with its attachments and the key that sent it."""
    email = lifecycle.email_create(
        account=mailbox.account,
        mailbox=mailbox,
        direction=Direction.OUTBOUND,
        status=EmailStatus.PENDING_SCAN,
        from_address=mailbox.address,
        to=envelope.to,
        cc=envelope.cc,
        bcc=envelope.bcc,
        subject=envelope.subject,
        markdown=markdown,
        message_id=make_msgid(domain=mailbox.address.rpartition("@")[2]),
        in_reply_to=envelope.in_reply_to,
        references=envelope.references,
        thread_id=envelope.thread_id,
        send_at=send_at,
        gate_timing=gate_timing,
        has_attachments=bool(attachments),
        attachment_names="\n".join(item.name for item in attachments),
        size_bytes=len(markdown.encode()),
        idempotency_key=idempotency_key,
        content_hash=digest,
        sent_by_key=sent_by_key,
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
    return email
