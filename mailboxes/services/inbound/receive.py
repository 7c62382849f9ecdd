"""Receiving mail: the one service every inbound path calls.

The SMTP listener and local delivery between this server's own mailboxes hand the exact
MIME bytes and the envelope recipients to ``inbound_receive``; the Postmark inbound webhook
hands the message it parsed from its payload (services.inbound.parse) to
``inbound_deliver``. Either way one ``ParsedMessage`` reaches ``inbound_deliver``, which
for each recipient that is an active mailbox: deduplicates by Message-ID, threads it,
stores the attachments, scores spam, stores it where the oversight policy puts it (held
for the operator in gated_all), records usage and emits ``message.received``.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.services import operator_email_send
from billing.models import UsageEventType
from billing.usage import usage_record
from mailboxes import lifecycle
from mailboxes.events import emit_event
from mailboxes.models import (
    Attachment,
    Direction,
    Email,
    EmailStatus,
    Mailbox,
    WebhookEvent,
)
from mailboxes.quotas import storage_add
from mailboxes.selectors import inbound_copies, mailboxes_at, recipient_mailboxes
from mailboxes.services.attachment_safety import HEAD_BYTES
from mailboxes.services.compliance import unsubscribe_by_mail
from mailboxes.services.correspondents import correspondents_record
from mailboxes.services.inbound.parse import ParsedMessage, message_parse
from mailboxes.services.rendering import html_sanitize
from mailboxes.services.spam import SpamSignals, spam_score
from multimail.ids import new_id
from oversight.policy import inbound_facts, inbound_route, mailbox_rules

logger = logging.getLogger("multimail.inbound")

# "Re:", "Fwd:", "FW:", "AW:", "SV:", "Re[2]:" ... repeated: removed for thread matching only.
_REPLY_PREFIX = re.compile(r"^\s*((re|fwd?|aw|sv|antw)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)
# Subject fallback threads only recent conversations, so an old "Re: hello" stays apart.
SUBJECT_THREAD_WINDOW = timedelta(days=30)


def normalize_subject(subject: str) -> str:
    """The subject without reply/forward prefixes, for matching a thread."""
    return _REPLY_PREFIX.sub("", subject or "").strip().lower()


def _spam_signals(parsed: ParsedMessage) -> SpamSignals:
    upstream_score: float | None
    try:
        upstream_score = float(parsed.headers.get("X-Spam-Score", ""))
    except ValueError:
        upstream_score = None
    return SpamSignals(
        subject=parsed.subject,
        body=parsed.text or parsed.html,
        from_address=parsed.from_address,
        reply_to=parsed.reply_to,
        has_message_id=parsed.had_message_id,
        has_date=parsed.has_date,
        html_only=bool(parsed.html) and not parsed.text,
        attachment_names=tuple(a.filename for a in parsed.attachments),
        attachment_heads=tuple(a.content[:HEAD_BYTES] for a in parsed.attachments),
        upstream_flag=parsed.headers.get("X-Spam-Status", "").strip().lower().startswith("yes"),
        upstream_score=upstream_score,
    )


def _normalize_address(address: str) -> str:
    return address.strip().strip("<>").lower()


def unsubscribe_address() -> str:
    """Where the mailto form of List-Unsubscribe points (see services.compliance)."""
    return f"unsubscribe@{settings.MAIL_DOMAIN}"


def inbound_accepts(address: str) -> bool:
    """Whether this server takes mail for ``address``: a mailbox, or the unsubscribe address."""
    return (
        _normalize_address(address) == unsubscribe_address()
        or mailboxes_at([_normalize_address(address)]).exists()
    )


def thread_id_for(*, mailbox: Mailbox, parsed: ParsedMessage) -> str:
    """The thread of the referenced email in this mailbox; else a recent email with the same
    subject (prefixes stripped) exchanged with the same correspondent; else a new thread."""
    referenced = parsed.referenced_ids
    if referenced:
        thread_id = (
            Email.objects.filter(mailbox=mailbox, message_id__in=referenced)
            .order_by("-id")
            .values_list("thread_id", flat=True)
            .first()
        )
        if thread_id:
            return thread_id
    normalized = normalize_subject(parsed.subject)
    if normalized and normalized != parsed.subject.strip().lower() and parsed.from_address:
        sender = parsed.from_address.lower()
        candidates = (
            Email.objects.filter(
                mailbox=mailbox,
                received_at__gte=timezone.now() - SUBJECT_THREAD_WINDOW,
                subject__icontains=normalized,
            )
            .order_by("-id")
            .only("thread_id", "subject", "from_address", "to", "cc", "direction")[:20]
        )
        for candidate in candidates:
            if normalize_subject(candidate.subject) != normalized:
                continue
            correspondents = (
                [a.lower() for a in [*candidate.to, *candidate.cc]]
                if candidate.direction == Direction.OUTBOUND
                else [candidate.from_address.lower()]
            )
            if sender in correspondents:
                return candidate.thread_id
    return new_id()


def _forward_to_operator(*, email: Email, parsed: ParsedMessage) -> None:
    lines = [
        f"{email.mailbox.address} received an email.",
        f"From: {email.from_address}",
        f"To: {', '.join(email.to)}",
        f"Subject: {email.subject}",
        "",
        parsed.text or email.markdown,
    ]
    operator_email_send(
        account=email.account,
        subject=f"Fwd: {email.subject}" if email.subject else "Fwd: (no subject)",
        text="\n".join(lines),
        # The sender's HTML is untrusted: scripts, forms and tracking attributes are removed.
        html=html_sanitize(parsed.html) if parsed.html else None,
    )


def _deliver_to_mailbox(
    *, mailbox: Mailbox, stored_copy_id: str | None, parsed: ParsedMessage, source: str
) -> Email:
    """Store the message in ``mailbox`` once (``stored_copy_id``: the copy found when the
    mailbox was read): a second delivery of the same Message-ID (a retried webhook, the
    SMTP path) returns the first copy. No row lock: the unique constraint on (mailbox,
    Message-ID) decides between concurrent deliveries, so deliveries into one mailbox, and
    sends of its account, proceed side by side."""
    existing = None
    if stored_copy_id is not None:
        existing = Email.objects.filter(pk=stored_copy_id).first()
    if existing is None:
        try:
            return _store(mailbox=mailbox, parsed=parsed, source=source)
        except IntegrityError:  # a concurrent delivery of the same message stored it first
            existing = inbound_copies(mailbox_id=mailbox.pk, message_id=parsed.message_id).first()
            if existing is None:
                raise
    logger.info("inbound_duplicate source=%s mailbox=%s email=%s", source, mailbox.pk, existing.pk)
    return existing


@transaction.atomic
def _store(*, mailbox: Mailbox, parsed: ParsedMessage, source: str) -> Email:
    spam = spam_score(signals=_spam_signals(parsed))
    rules = mailbox_rules(mailbox)
    facts = (
        inbound_facts(
            account_id=mailbox.account_id,
            sender=parsed.from_address,
            subject=parsed.subject,
            text=parsed.text,
            html=parsed.html,
            markdown=parsed.markdown,
            has_attachments=bool(parsed.attachments),
        )
        if rules
        else None
    )
    route = inbound_route(mailbox.oversight_mode, spam.verdict, rules=rules, facts=facts)
    status, now = route.status, timezone.now()
    refused_by = route.rule if status == EmailStatus.REJECTED else None
    decision = (
        lifecycle.rule_refused_fields(refused_by, now)
        if refused_by
        else lifecycle.routed_by(route.rule, now)
    )
    email = lifecycle.email_create(
        account=mailbox.account,
        mailbox=mailbox,
        direction=Direction.INBOUND,
        status=status,
        from_address=parsed.from_address[:998],
        to=parsed.to,
        cc=parsed.cc,
        subject=parsed.subject,
        markdown=parsed.markdown,
        html=parsed.html,
        text=parsed.text,
        message_id=parsed.message_id[:998],
        in_reply_to=parsed.in_reply_to,
        references=parsed.references,
        thread_id=thread_id_for(mailbox=mailbox, parsed=parsed),
        spam_score=spam.score,
        spam_verdict=spam.verdict,
        spam_reasons=list(spam.reasons),
        has_attachments=bool(parsed.attachments),
        attachment_names="\n".join(item.filename for item in parsed.attachments),
        size_bytes=parsed.body_size,
        headers=parsed.headers,
        **decision,
    )
    Attachment.objects.bulk_create(
        Attachment(
            email=email,
            filename=item.filename,
            content_type=item.content_type,
            size=len(item.content),
            content=item.content,
            content_id=item.content_id,
        )
        for item in parsed.attachments
    )
    if status == EmailStatus.PENDING_INBOUND_APPROVAL:
        lifecycle.email_hold(email=email)
    if refused_by:
        # Never shown: no message.received, no correspondent; the operator's event names
        # the rule.
        lifecycle.email_refuse_by_rule(email=email, rule=refused_by, at=now)
    elif status != EmailStatus.SPAM_QUARANTINED:
        correspondents_record(
            account_id=mailbox.account_id,
            direction=Direction.INBOUND,
            addresses=[email.from_address],
            email_id=email.pk,
        )
        emit_event(
            account=mailbox.account,
            event_type=WebhookEvent.MESSAGE_RECEIVED,
            mailbox=mailbox,
            data={
                "email_id": email.pk,
                "mailbox_id": mailbox.pk,
                "thread_id": email.thread_id,
                "from": email.from_address,
                "to": email.to,
                "subject": email.subject,
                "status": email.status,
                "has_attachments": email.has_attachments,
                "spam_verdict": email.spam_verdict,
            },
        )
    if mailbox.forward_inbound and status == EmailStatus.UNREAD:
        _forward_to_operator(email=email, parsed=parsed)
    # Last: these rows are the account's hot counters, locked from here until commit.
    storage_add(
        account_id=mailbox.account_id,
        delta=email.size_bytes + sum(len(item.content) for item in parsed.attachments),
    )
    usage_record(account=mailbox.account, event_type=UsageEventType.EMAILS_RECEIVED)
    logger.info(
        "inbound_received source=%s mailbox=%s email=%s status=%s spam_score=%s",
        source,
        mailbox.pk,
        email.pk,
        email.status,
        email.spam_score,
    )
    return email


def _recipient_mailboxes(
    recipients: list[str], *, message_id: str
) -> list[tuple[Mailbox, str | None]]:
    """The distinct active mailboxes among ``recipients``, in recipient order, each with its
    account and the id of the inbound email it already stored under ``message_id`` (None
    when none): one statement finds the mailboxes, reads what storing needs of them and
    deduplicates, rather than three."""
    addresses = [_normalize_address(address) for address in recipients]
    found = {
        mailbox.address: (mailbox, stored_copy_id)
        for mailbox, stored_copy_id in recipient_mailboxes(
            addresses=addresses, message_id=message_id
        )
    }
    distinct = {found[a][0].pk: found[a] for a in addresses if a in found}
    return list(distinct.values())


def inbound_deliver(*, parsed: ParsedMessage, recipients: list[str], source: str) -> list[Email]:
    """Deliver one parsed message to every active mailbox among ``recipients``.

    ``source`` names the path ("postmark", "smtp", "local") for the logs. Recipients that
    are not an active mailbox of this server get nothing (the caller decides whether that
    is a 550, a logged skip, or an outbound send). The same Message-ID delivered twice to
    the same mailbox returns the email stored the first time. Each mailbox's delivery is
    its own transaction, so one failing recipient does not undo the others.
    """
    if unsubscribe_address() in {_normalize_address(address) for address in recipients}:
        unsubscribe_by_mail(subject=parsed.subject)
    return [
        _deliver_to_mailbox(
            mailbox=mailbox, stored_copy_id=stored_copy_id, parsed=parsed, source=source
        )
        for mailbox, stored_copy_id in _recipient_mailboxes(
            recipients, message_id=parsed.message_id
        )
    ]


def inbound_receive(*, raw: bytes, recipients: list[str], source: str) -> list[Email]:
    """Deliver one MIME message (see ``inbound_deliver``)."""
    return inbound_deliver(parsed=message_parse(raw), recipients=recipients, source=source)
