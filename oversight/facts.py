"""The whole picture of an email, wherever the operator decides on it.

``decision_facts_bulk`` gathers, for a page of emails, everything the queue card, the email
page, the hosted approval page, the notification email and ``GET /v1/oversight/pending``
show: the sender as recipients see it, every recipient (with the mailbox's automatic Cc and
Bcc) and whether the account has exchanged mail with them before, Reply-To and the other
headers, when it is sent, the attachments (programs and disguised files marked), every link
with where it really goes, the spam verdict with its reasons and the content filter's
findings, the key that sent it, the message it answers, and its content version.

It costs three queries for any number of emails (attachments, correspondents, the answered
messages; the last only when a page holds a reply) on top of the caller's query for the
emails, which must select their mailbox and sending key (``FACTS_RELATED``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import formataddr, getaddresses, parseaddr

from django.db.models import BinaryField
from django.db.models.functions import Substr
from django.utils import timezone

from mailboxes.models import Attachment, Correspondent, Direction, Email, GateTiming
from mailboxes.services.correspondents import normalized_address
from mailboxes.versions import email_version
from oversight.inspection import (
    SNIFF_BYTES,
    AttachmentFact,
    LinkFact,
    attachment_inspect,
    body_links,
)

# What the caller's email query must select_related for the facts to add no query per row.
FACTS_RELATED = ("mailbox", "sent_by_key")
EXCERPT_CHARS = 280
# Headers shown in their own rows, or MIME plumbing: every other stored header is listed.
_SHOWN_ELSEWHERE = frozenset(
    {
        "from", "to", "cc", "bcc", "subject", "date", "message-id", "reply-to", "in-reply-to",
        "references", "mime-version", "content-type", "content-transfer-encoding",
    }
)  # fmt: skip


_RECIPIENT_ROLES = (
    ("to", "To"),
    ("cc", "Cc"),
    ("bcc", "Bcc"),
    ("auto_cc", "Cc added by the mailbox"),
    ("auto_bcc", "Bcc added by the mailbox"),
)


@dataclass(frozen=True, slots=True)
class Correspondence:
    """One address the email goes to (or, inbound, comes from) and the account's history
    with it. ``first_contact``: no other email was ever exchanged with this address."""

    address: str
    role: str  # to, cc, bcc, auto_cc, auto_bcc (added by the mailbox), or from (inbound)
    mailed_before: bool
    wrote_before: bool

    @property
    def first_contact(self) -> bool:
        return not (self.mailed_before or self.wrote_before)


@dataclass(frozen=True, slots=True)
class SpamFact:
    verdict: str | None
    score: int | None
    reasons: tuple[str, ...]
    content_findings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SendingKey:
    id: str
    name: str
    prefix: str
    revoked: bool


@dataclass(frozen=True, slots=True)
class AnsweredMessage:
    email_id: str
    mailbox_id: str
    direction: str
    subject: str
    sender: str
    date: datetime
    excerpt: str


@dataclass(frozen=True, slots=True)
class Schedule:
    send_at: datetime | None
    gate_timing: str
    # What approving does with respect to the time, in one sentence.
    note: str


@dataclass(frozen=True, slots=True)
class DecisionFacts:
    email: Email
    sender: str  # as recipients see it: "Display Name <address>"
    sender_name: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    bcc: tuple[str, ...]
    auto_cc: tuple[str, ...]
    auto_bcc: tuple[str, ...]
    reply_to: tuple[str, ...]
    headers: dict[str, str]  # the stored headers not shown in rows of their own
    schedule: Schedule
    attachments: tuple[AttachmentFact, ...]
    links: tuple[LinkFact, ...]
    spam: SpamFact
    correspondence: tuple[Correspondence, ...]
    sent_by_key: SendingKey | None
    answers: AnsweredMessage | None
    version: str
    # Everything that deserves a second look, one sentence each, for the top of the card.
    warnings: tuple[str, ...]

    @property
    def outbound(self) -> bool:
        return self.email.direction == Direction.OUTBOUND

    @property
    def first_contact(self) -> dict[str, bool]:
        return {item.address: item.first_contact for item in self.correspondence}

    @property
    def suspicious_links(self) -> tuple[LinkFact, ...]:
        return tuple(link for link in self.links if link.warnings)

    @property
    def recipient_groups(self) -> list[tuple[str, list[Correspondence]]]:
        """Outbound recipients by header, in the order the card shows them."""
        groups = [
            (label, [item for item in self.correspondence if item.role == role])
            for role, label in _RECIPIENT_ROLES
        ]
        return [(label, items) for label, items in groups if items]

    @property
    def sender_history(self) -> Correspondence | None:
        """Inbound: the account's history with the sender."""
        return next((item for item in self.correspondence if item.role == "from"), None)


@dataclass(frozen=True, slots=True)
class _AttachmentRow:
    """An attachment's metadata and first bytes (mailboxes.versions.AttachmentMetadata)."""

    pk: str
    email_id: str
    filename: str
    content_type: str
    size: int
    head: bytes


def decision_facts(*, email: Email) -> DecisionFacts:
    return decision_facts_bulk(emails=[email])[email.pk]


def decision_facts_bulk(*, emails: Sequence[Email]) -> dict[str, DecisionFacts]:
    """The facts of each email, by id, in a bounded number of queries (module docstring)."""
    if not emails:
        return {}
    attachments = _attachments_of(emails)
    history = _history_of(emails)
    answered = _answered_messages(emails)
    return {
        email.pk: _facts(
            email,
            attachments=attachments.get(email.pk, []),
            history=history,
            answered=answered.get(email.pk),
        )
        for email in emails
    }


def _attachments_of(emails: Sequence[Email]) -> dict[str, list[_AttachmentRow]]:
    rows = (
        Attachment.objects.filter(email_id__in=[email.pk for email in emails])
        .annotate(head=Substr("content", 1, SNIFF_BYTES, output_field=BinaryField()))
        .order_by("id")
        .values_list("id", "email_id", "filename", "content_type", "size", "head")
    )
    found: dict[str, list[_AttachmentRow]] = defaultdict(list)
    for pk, email_id, filename, content_type, size, head in rows:
        found[email_id].append(
            _AttachmentRow(pk, email_id, filename, content_type, size, bytes(head or b""))
        )
    return found


def _counterparts(email: Email) -> list[tuple[str, str]]:
    """(address, role) of everyone the email is exchanged with, each address once."""
    if email.direction == Direction.INBOUND:
        pairs = [(email.from_address, "from")]
    else:
        mailbox = email.mailbox
        pairs = [
            *((address, "to") for address in email.to),
            *((address, "cc") for address in email.cc),
            *((address, "bcc") for address in email.bcc),
            *((address, "auto_cc") for address in [mailbox.auto_cc] if address),
            *((address, "auto_bcc") for address in [mailbox.auto_bcc] if address),
        ]
    seen: set[str] = set()
    result = []
    for address, role in pairs:
        key = normalized_address(address)
        if key and key not in seen:
            seen.add(key)
            result.append((key, role))
    return result


# (account id, address) -> [(direction, first email id, last email id)]
_History = dict[tuple[str, str], list[tuple[str, str, str]]]


def _history_of(emails: Sequence[Email]) -> _History:
    addresses = {address for email in emails for address, _ in _counterparts(email)}
    if not addresses:
        return {}
    rows = Correspondent.objects.filter(
        account_id__in={email.account_id for email in emails}, address__in=addresses
    ).values_list("account_id", "address", "direction", "first_email_id", "last_email_id")
    history: _History = defaultdict(list)
    for account_id, address, direction, first_id, last_id in rows:
        history[(account_id, address)].append((direction, first_id, last_id))
    return history


def _answered_id(email: Email) -> str:
    """The Message-ID this email answers (In-Reply-To may list several: the first)."""
    for token in email.in_reply_to.split():
        if token.startswith("<"):
            return token
    return ""


def _answered_messages(emails: Sequence[Email]) -> dict[str, AnsweredMessage]:
    wanted: dict[tuple[str, str], list[str]] = defaultdict(list)
    for email in emails:
        message_id = _answered_id(email)
        if message_id:
            wanted[(email.mailbox_id, message_id)].append(email.pk)
    if not wanted:
        return {}
    rows = (
        Email.objects.filter(
            mailbox_id__in={mailbox_id for mailbox_id, _ in wanted},
            message_id__in={message_id for _, message_id in wanted},
        )
        .exclude(pk__in=[pk for pks in wanted.values() for pk in pks])
        .order_by("id")  # the first copy of a Message-ID wins
        .annotate(
            text_start=Substr("text", 1, EXCERPT_CHARS * 2),
            markdown_start=Substr("markdown", 1, EXCERPT_CHARS * 2),
        )
        .values_list(
            "pk",
            "mailbox_id",
            "message_id",
            "direction",
            "subject",
            "from_address",
            "received_at",
            "sent_at",
            "text_start",
            "markdown_start",
        )
    )
    found: dict[str, AnsweredMessage] = {}
    for pk, mailbox_id, message_id, direction, subject, sender, received, sent, text, md in rows:
        replies = [pk for pk in wanted.get((mailbox_id, message_id), []) if pk not in found]
        excerpt = " ".join((text or md or "").split())
        answered = AnsweredMessage(
            email_id=pk,
            mailbox_id=mailbox_id,
            direction=direction,
            subject=subject,
            sender=sender,
            date=sent or received,
            excerpt=excerpt[:EXCERPT_CHARS] + ("…" if len(excerpt) > EXCERPT_CHARS else ""),
        )
        found.update(dict.fromkeys(replies, answered))
    return found


def _header(email: Email, name: str) -> str:
    return next(
        (str(value) for key, value in email.headers.items() if key.lower() == name.lower()), ""
    )


def _schedule(email: Email) -> Schedule:
    send_at = email.send_at
    if email.direction == Direction.INBOUND:
        return Schedule(None, "", "")
    if send_at is None:
        return Schedule(None, email.gate_timing, "Sent as soon as it is approved.")
    when = f"{send_at:%Y-%m-%d %H:%M} UTC"
    if send_at <= timezone.now():
        note = f"Its scheduled time ({when}) has passed: once approved it is sent at once."
    elif email.gate_timing == GateTiming.GATE_FIRST:
        note = (
            f"Scheduled for {when}. Approval comes first (gate_first): once approved it waits "
            "and is sent at that time without asking again."
        )
    else:
        note = f"Scheduled for {when} (schedule_first): it is held again when that time comes."
    return Schedule(send_at, email.gate_timing, note)


def _sending_key(email: Email) -> SendingKey | None:
    key = email.sent_by_key
    if key is None:
        return None
    return SendingKey(id=key.pk, name=key.name, prefix=key.prefix, revoked=not key.is_active)


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


def _facts(
    email: Email,
    *,
    attachments: list[_AttachmentRow],
    history: _History,
    answered: AnsweredMessage | None,
) -> DecisionFacts:
    outbound = email.direction == Direction.OUTBOUND
    mailbox = email.mailbox
    if outbound:
        sender_name = mailbox.display_name
        sender = (
            formataddr((sender_name, email.from_address)) if sender_name else email.from_address
        )
    else:
        shown_from = _header(email, "From")
        sender_name = parseaddr(shown_from)[0] if shown_from else ""
        sender = shown_from or email.from_address
    reply_to = tuple(
        address for _, address in getaddresses([_header(email, "Reply-To")]) if "@" in address
    )
    correspondence = []
    for address, role in _counterparts(email):
        past = [
            direction
            for direction, first_id, last_id in history.get((email.account_id, address), [])
            if not first_id == last_id == email.pk  # an email is not its own history
        ]
        correspondence.append(
            Correspondence(
                address=address,
                role=role,
                mailed_before=Direction.OUTBOUND in past,
                wrote_before=Direction.INBOUND in past,
            )
        )
    attachment_facts = tuple(
        attachment_inspect(
            name=row.filename, content_type=row.content_type, size=row.size, head=row.head
        )
        for row in attachments
    )
    links = tuple(body_links(html=email.html, markdown=email.markdown, text=email.text))
    spam = SpamFact(
        verdict=email.spam_verdict,
        score=email.spam_score,
        reasons=tuple(email.spam_reasons),
        content_findings=tuple(email.content_findings),
    )
    warnings: list[str] = []
    shown_address = parseaddr(sender_name)[1] if "@" in sender_name else ""
    if shown_address and shown_address.lower() != email.from_address.lower():
        warnings.append(
            f"The sender's name shows {shown_address}, but the mail is from {email.from_address}."
        )
    foreign_reply_to = [a for a in reply_to if _domain(a) != _domain(email.from_address)]
    if foreign_reply_to:
        warnings.append(f"Replies go to {', '.join(foreign_reply_to)}, not to the sender's domain.")
    if spam.verdict and spam.verdict != "clean":
        warnings.append(f"Spam check: {spam.verdict} (score {spam.score} of 100).")
    # One line per finding, file and link: the rows below give the details.
    flagged_links = [link for link in links if link.warnings]
    warnings.extend(
        f"Content filter: {finding}."
        for finding in spam.content_findings
        if not any(link.url in finding for link in flagged_links)  # said once, below
    )
    for attachment in attachment_facts:
        if attachment.warnings:
            first = attachment.warnings[0]
            warnings.append(first if attachment.executable else f"{attachment.name}: {first}")
    warnings.extend(f"Link: {link.warnings[0]}" for link in flagged_links)
    new = [item.address for item in correspondence if item.first_contact]
    if outbound and new:
        warnings.append(f"First contact: this account never exchanged mail with {', '.join(new)}.")
    return DecisionFacts(
        email=email,
        sender=sender,
        sender_name=sender_name,
        to=tuple(email.to),
        cc=tuple(email.cc),
        bcc=tuple(email.bcc),
        auto_cc=tuple(a for a in [mailbox.auto_cc] if a and outbound),
        auto_bcc=tuple(a for a in [mailbox.auto_bcc] if a and outbound),
        reply_to=reply_to,
        headers={
            str(name): str(value)
            for name, value in email.headers.items()
            if str(name).lower() not in _SHOWN_ELSEWHERE
        },
        schedule=_schedule(email),
        attachments=attachment_facts,
        links=links,
        spam=spam,
        correspondence=tuple(correspondence),
        sent_by_key=_sending_key(email),
        answers=answered,
        version=email_version(email=email, attachments=attachments),
        warnings=tuple(warnings),
    )
