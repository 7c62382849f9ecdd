"""Receiving mail: the one service every inbound path calls.

The SMTP listener and local delivery between this server's own mailboxes hand the exact
MIME bytes and the envelope recipients to ``inbound_receive``; the Postmark inbound webhook
hands its JSON payload, which Postmark already parsed, to ``postmark_message_parse`` and
the result to ``inbound_deliver`` (re-parsing MIME rebuilt from that JSON cost more than
the rest of the request). Either way one ``ParsedMessage`` reaches ``inbound_deliver``,
which for each recipient that is an active mailbox: deduplicates by Message-ID, threads
it, stores the attachments, scores spam, asks the oversight policy, records usage and
emits ``message.received``.
"""

from __future__ import annotations

import logging
import re
from base64 import b64decode
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from email import policy
from email.headerregistry import Address, HeaderRegistry
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, make_msgid
from typing import Any

import html2text
from anymail.utils import EmailAddress
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
from mailboxes.services.compliance import unsubscribe_by_mail
from mailboxes.services.rendering import html_sanitize
from mailboxes.services.spam import SpamSignals, spam_score
from multimail.ids import new_id
from oversight.policy import inbound_first_status

logger = logging.getLogger("multimail.inbound")

# "Re:", "Fwd:", "FW:", "AW:", "SV:", "Re[2]:" ... repeated: removed for thread matching only.
_REPLY_PREFIX = re.compile(r"^\s*((re|fwd?|aw|sv|antw)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM_ADDRESS = re.compile(rf"{_ATEXT}(\.{_ATEXT})*@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*")
# Subject fallback threads only recent conversations, so an old "Re: hello" stays apart.
SUBJECT_THREAD_WINDOW = timedelta(days=30)
# Headers kept on the Email row (the raw trace headers are long and of no use to agents).
_SKIPPED_HEADERS = {"received", "dkim-signature", "arc-seal", "arc-message-signature"}
MAX_STORED_HEADERS = 100


def normalize_subject(subject: str) -> str:
    """The subject without reply/forward prefixes, for matching a thread."""
    return _REPLY_PREFIX.sub("", subject or "").strip().lower()


def _message_ids(value: str) -> list[str]:
    return _MESSAGE_ID.findall(value or "")


@dataclass
class ParsedAttachment:
    filename: str
    content_type: str
    content: bytes
    content_id: str = ""


@dataclass
class ParsedMessage:
    """Everything the service needs from the MIME message, extracted once."""

    from_address: str
    to: list[str]
    cc: list[str]
    subject: str
    message_id: str
    in_reply_to: str
    references: str
    html: str
    text: str
    markdown: str
    reply_to: str
    has_date: bool
    headers: dict[str, str]
    attachments: list[ParsedAttachment] = field(default_factory=list)
    had_message_id: bool = True

    @property
    def body_size(self) -> int:
        return sum(len(part.encode()) for part in (self.markdown, self.html, self.text))

    @property
    def referenced_ids(self) -> list[str]:
        ids = _message_ids(self.in_reply_to) + _message_ids(self.references)
        return list(dict.fromkeys(ids))


def _addresses(message: Message, name: str) -> list[str]:
    values = message.get_all(name) or []
    return [addr for _, addr in getaddresses([str(v) for v in values]) if addr]


def _stored_headers(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in items:
        if name.lower() in _SKIPPED_HEADERS or name in headers:
            continue
        if len(headers) >= MAX_STORED_HEADERS:
            break
        headers[name] = value[:2000]
    return headers


def _html_to_markdown(html: str) -> str:
    converter = html2text.HTML2Text()
    converter.body_width = 0  # no hard wrapping: agents reflow text themselves
    converter.ignore_images = False
    converter.unicode_snob = True
    return converter.handle(html).strip()


def _leaf_parts(part: Message) -> Iterator[Message]:
    """Leaf MIME parts in order; a forwarded message (message/rfc822) is one leaf, so it is
    kept whole as an .eml attachment instead of being flattened into ours."""
    if part.get_content_type() == "message/rfc822" or not part.is_multipart():
        yield part
        return
    for sub in part.get_payload():  # type: ignore[union-attr]
        if isinstance(sub, Message):
            yield from _leaf_parts(sub)


def _part_bytes(part: Message) -> bytes:
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload(0)
        return inner.as_bytes() if isinstance(inner, Message) else b""
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _unique_name(name: str, taken: set[str]) -> str:
    candidate, counter = name, 2
    stem, dot, ext = name.rpartition(".")
    while candidate.lower() in taken:
        candidate = f"{stem} ({counter}).{ext}" if dot and stem else f"{name} ({counter})"
        counter += 1
    taken.add(candidate.lower())
    return candidate


def _attachment(
    *,
    index: int,
    filename: str | None,
    content_type: str,
    attached: bool,
    taken: set[str],
    content: bytes,
    content_id: str,
) -> ParsedAttachment | None:
    """The ``index``-th leaf part (1-based, bodies counted) as a stored attachment, named
    uniquely within the message; None for a part that is no attachment."""
    if not filename and not attached and content_type.startswith("text/"):
        return None  # an extra body alternative (e.g. text/calendar without a name)
    if not filename:
        extension = ".eml" if content_type == "message/rfc822" else ".bin"
        filename = f"attachment-{index}{extension}"
    filename = filename.replace("/", "_").replace("\\", "_").strip()[:200] or "attachment"
    return ParsedAttachment(
        filename=_unique_name(filename, taken),
        content_type=content_type,
        content=content,
        content_id=content_id.strip("<>")[:255],
    )


def _text_of(part: Message | None) -> str:
    if part is None:
        return ""
    try:
        content = part.get_content()  # type: ignore[attr-defined]
    except (LookupError, UnicodeDecodeError):  # unknown or lying charset: best effort
        raw = part.get_payload(decode=True)
        content = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ""
    return content if isinstance(content, str) else ""


def message_parse(raw: bytes) -> ParsedMessage:
    message: EmailMessage = BytesParser(policy=policy.default).parsebytes(raw)  # type: ignore[assignment]
    html_part = message.get_body(preferencelist=("html",))
    text_part = message.get_body(preferencelist=("plain",))
    if html_part is not None and html_part.get_content_type() != "text/html":
        html_part = None
    if text_part is not None and text_part.get_content_type() != "text/plain":
        text_part = None
    html, text = _text_of(html_part), _text_of(text_part)
    markdown = _html_to_markdown(html) if html else text.strip()

    attachments: list[ParsedAttachment] = []
    taken: set[str] = set()
    for index, part in enumerate(_leaf_parts(message), start=1):
        if part is html_part or part is text_part:
            continue
        attachment = _attachment(
            index=index,
            filename=part.get_filename(),
            content_type=part.get_content_type(),
            attached=part.get_content_disposition() == "attachment",
            taken=taken,
            content=_part_bytes(part),
            content_id=str(part.get("Content-ID", "") or ""),
        )
        if attachment is not None:
            attachments.append(attachment)
    headers = _stored_headers((name, str(value)) for name, value in message.items())

    from_list = _addresses(message, "From")
    raw_message_id = _message_ids(str(message.get("Message-ID", "")))
    reply_to = _addresses(message, "Reply-To")
    return ParsedMessage(
        from_address=from_list[0] if from_list else "",
        to=_addresses(message, "To"),
        cc=_addresses(message, "Cc"),
        subject=str(message.get("Subject", "") or "")[:998],
        # A message without a Message-ID still gets one, so replies to it can thread.
        message_id=raw_message_id[0] if raw_message_id else make_msgid(domain=settings.MAIL_DOMAIN),
        had_message_id=bool(raw_message_id),
        in_reply_to=str(message.get("In-Reply-To", "") or "")[:998],
        references=str(message.get("References", "") or ""),
        html=html,
        text=text,
        markdown=markdown,
        reply_to=reply_to[0] if reply_to else "",
        has_date=message.get("Date") is not None,
        headers=headers,
        attachments=attachments,
    )


# Headers the standard library parses into structured values (addresses, dates, MIME
# parameters); the others, Subject included, are unstructured text.
_STRUCTURED_HEADERS = frozenset(HeaderRegistry().registry) - {"subject"}


def _header_text(name: str, value: str) -> str:
    """``value`` as ``message_parse`` reads that header from MIME: line breaks unfolded,
    structured headers normalized, encoded words decoded, surrounding blanks (which line
    folding moves around) dropped. Plain unstructured text, the common case, skips the
    costly header parser."""
    value = "".join(value.splitlines()).strip()
    structured = name.lower() in _STRUCTURED_HEADERS
    if value.isascii() and "=?" not in value and not structured:
        return value
    if name.lower() == "message-id" and _MESSAGE_ID.fullmatch(value):
        return value  # a well-formed Message-ID reads back verbatim
    return str(policy.default.header_factory(name, value)).strip()


def _first(items: list[tuple[str, str]], name: str) -> str:
    name = name.lower()
    return next((value for key, value in items if key.lower() == name), "")


def _mime_type(content_type: str) -> str:
    """The type of a Content-Type value, read as ``Message.get_content_type`` reads it."""
    mime_type = content_type.split(";", 1)[0].strip().lower()
    return mime_type if mime_type.count("/") == 1 else "text/plain"


def _postmark_address(name: str, email: str) -> Address:
    # A plain dot-atom address is taken apart directly: parsing it is the costly part of
    # building an Address, and gives the same parts.
    if _DOT_ATOM_ADDRESS.fullmatch(email):
        username, _, domain = email.partition("@")
        return Address(name or "", username, domain)
    return EmailAddress(name, email)


def _postmark_addresses(full: Iterable[Mapping[str, str]]) -> list[Address]:
    return [_postmark_address(item.get("Name", ""), item.get("Email", "")) for item in full]


def _base64_content(part: Mapping[str, Any]) -> bytes:
    # Postmark's own name is "Content"; its test payloads say "Data". Strict: a corrupted
    # attachment is refused (binascii.Error, a ValueError) rather than stored truncated.
    encoded = part["Content"] if "Content" in part else part["Data"]
    return b64decode("".join(encoded.split()), validate=True)


def _utf8_text(value: str | None) -> str:
    # As a UTF-8 MIME part of this text decodes: an escaped undecodable byte becomes U+FFFD.
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace") if value else ""


def postmark_message_parse(payload: Mapping[str, Any]) -> ParsedMessage:
    """The message of a Postmark inbound payload without RawEmail, from the fields Postmark
    already parsed: what ``message_parse`` gives for the MIME message those fields describe
    (From/To/Cc/Bcc, Subject, then Postmark's Headers, then Date and Reply-To), without
    building and re-parsing that MIME. A malformed payload raises ValueError, KeyError,
    TypeError or AttributeError."""
    postmark_headers = payload.get("Headers", [])
    # Postmark prepends the envelope sender as Return-Path: not a header of the message.
    if postmark_headers and postmark_headers[0]["Name"].lower() == "return-path":
        postmark_headers = postmark_headers[1:]
    sender_full = payload.get("FromFull")
    sender = _postmark_addresses([sender_full]) if sender_full is not None else []
    listed = {
        name: _postmark_addresses(payload[key])
        for name, key in (("To", "ToFull"), ("Cc", "CcFull"), ("Bcc", "BccFull"))
        if payload.get(key) is not None
    }
    items = [("From", str(sender[0]) if sender else "")]
    items += [(name, ", ".join(str(address) for address in full)) for name, full in listed.items()]
    subject = payload.get("Subject", "")
    if subject is not None:
        items.append(("Subject", _header_text("Subject", subject)))
    items += [
        (header["Name"], _header_text(header["Name"], header["Value"] or ""))
        for header in postmark_headers
    ]
    # Postmark takes these two out of Headers into fields of their own.
    present = {name.lower() for name, _ in items}
    for name, key in (("Date", "Date"), ("Reply-To", "ReplyTo")):
        if payload.get(key) and name.lower() not in present:
            items.append((name, _header_text(name, payload[key])))

    # Leaf parts come in MIME order: the bodies, inline parts (with a Content-ID), the rest.
    text, html = payload.get("TextBody", ""), payload.get("HtmlBody", "")
    index = 1 + (text is not None) + (html is not None)
    parts = payload.get("Attachments", [])
    inline = [part for part in parts if part.get("ContentID") is not None]
    attachments: list[ParsedAttachment] = []
    taken: set[str] = set()
    for part in [*inline, *(part for part in parts if part.get("ContentID") is None)]:
        name = part.get("Name")
        attachment = _attachment(
            index=index,
            filename=re.sub(r"[\r\n]+", " ", name).strip() if name else None,
            content_type=_mime_type(part["ContentType"]),
            attached=part.get("ContentID") is None,
            taken=taken,
            content=_base64_content(part),
            content_id=part.get("ContentID") or "",
        )
        index += 1
        if attachment is not None:
            attachments.append(attachment)

    html, text = _utf8_text(html), _utf8_text(text)
    message_id = _message_ids(_first(items, "Message-ID"))
    reply_to = [
        address
        for _, address in getaddresses([v for k, v in items if k.lower() == "reply-to"])
        if address
    ]
    return ParsedMessage(
        from_address=sender[0].addr_spec if sender else "",
        to=[address.addr_spec for address in listed.get("To", []) if address.addr_spec],
        cc=[address.addr_spec for address in listed.get("Cc", []) if address.addr_spec],
        subject=_first(items, "Subject")[:998],
        message_id=message_id[0] if message_id else make_msgid(domain=settings.MAIL_DOMAIN),
        had_message_id=bool(message_id),
        in_reply_to=_first(items, "In-Reply-To")[:998],
        references=_first(items, "References"),
        html=html,
        text=text,
        markdown=_html_to_markdown(html) if html else text.strip(),
        reply_to=reply_to[0] if reply_to else "",
        has_date=any(name.lower() == "date" for name, _ in items),
        headers=_stored_headers(items),
        attachments=attachments,
    )


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
    return _normalize_address(address) == unsubscribe_address() or bool(
        _active_mailbox_ids([address])
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


def _stored_copy(*, mailbox_id: str, message_id: str) -> Email | None:
    return Email.objects.filter(
        mailbox_id=mailbox_id, direction=Direction.INBOUND, message_id=message_id[:998]
    ).first()


def _deliver_to_mailbox(*, mailbox_id: str, parsed: ParsedMessage, source: str) -> Email:
    """Store the message in one mailbox, once: a second delivery of the same Message-ID (a
    retried webhook, the SMTP path) returns the first copy. No row lock: the unique
    constraint on (mailbox, Message-ID) decides between concurrent deliveries, so deliveries
    into one mailbox, and sends of its account, proceed side by side."""
    existing = _stored_copy(mailbox_id=mailbox_id, message_id=parsed.message_id)
    if existing is None:
        try:
            return _store(mailbox_id=mailbox_id, parsed=parsed, source=source)
        except IntegrityError:  # a concurrent delivery of the same message stored it first
            existing = _stored_copy(mailbox_id=mailbox_id, message_id=parsed.message_id)
            if existing is None:
                raise
    logger.info("inbound_duplicate source=%s mailbox=%s email=%s", source, mailbox_id, existing.pk)
    return existing


@transaction.atomic
def _store(*, mailbox_id: str, parsed: ParsedMessage, source: str) -> Email:
    mailbox = Mailbox.objects.select_related("account").get(pk=mailbox_id)
    spam = spam_score(signals=_spam_signals(parsed))
    status = inbound_first_status(mailbox.oversight_mode, spam.verdict)
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
        has_attachments=bool(parsed.attachments),
        size_bytes=parsed.body_size,
        headers=parsed.headers,
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
    if status != EmailStatus.SPAM_QUARANTINED:
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


def _active_mailbox_ids(recipients: list[str]) -> list[str]:
    """The distinct active mailboxes among ``recipients``, in recipient order, in one query."""
    addresses = [_normalize_address(address) for address in recipients]
    found = dict(
        Mailbox.objects.filter(
            address__in={address for address in addresses if address}, is_active=True
        ).values_list("address", "pk")
    )
    return list(dict.fromkeys(found[address] for address in addresses if address in found))


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
        _deliver_to_mailbox(mailbox_id=mailbox_id, parsed=parsed, source=source)
        for mailbox_id in _active_mailbox_ids(recipients)
    ]


def inbound_receive(*, raw: bytes, recipients: list[str], source: str) -> list[Email]:
    """Deliver one MIME message (see ``inbound_deliver``)."""
    return inbound_deliver(parsed=message_parse(raw), recipients=recipients, source=source)
