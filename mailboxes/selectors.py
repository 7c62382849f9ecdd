"""Reads of mail: the email filter shared by the API and the console, threads, spam,
contacts and the suppression list.

``EmailFilter`` is the ONE definition of how email lists are filtered: the API's
``GET /v1/mailboxes/{id}/emails`` and the operator console both build it from query
parameters and apply it to a queryset, so a filter means the same thing everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db.models import Exists, Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from accounts.models import Account
from mailboxes.models import (
    Attachment,
    Contact,
    Direction,
    Email,
    EmailStatus,
    Mailbox,
    Suppression,
)
from multimail.errors import ApiError, not_found
from multimail.pagination import Page, cursor_paginate
from oversight.policy import agent_can_read_content, agent_hidden

# Columns a list row needs: bodies and headers stay in the database.
SUMMARY_FIELDS = (
    "id",
    "account_id",
    "mailbox_id",
    "direction",
    "status",
    "from_address",
    "to",
    "cc",
    "subject",
    "thread_id",
    "received_at",
    "has_attachments",
    "spam_score",
    "spam_verdict",
    "delivered_at",
    "bounced_at",
    "bounce_type",
)
SPAM_STATUSES = (EmailStatus.SPAM_FLAGGED, EmailStatus.SPAM_QUARANTINED)


def _invalid(param: str, message: str) -> ApiError:
    return ApiError("invalid_parameter", message, param=param)


def parse_instant(value: str, *, param: str) -> datetime:
    """ISO 8601 date or date-time (naive means UTC), or epoch milliseconds."""
    value = value.strip()
    parsed: datetime | None
    try:
        if value.isdigit():
            parsed = datetime.fromtimestamp(int(value) / 1000, tz=UTC)
        else:
            parsed = parse_datetime(value)
            if parsed is None:
                day = parse_date(value)
                parsed = datetime(day.year, day.month, day.day) if day else None
    except (ValueError, OverflowError, OSError):  # out-of-range dates and epochs
        parsed = None
    if parsed is None:
        raise _invalid(
            param,
            f"{param} must be an ISO 8601 date or date-time, e.g. 2026-01-31T09:00:00Z.",
        )
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)


def _parse_bool(value: str, *, param: str) -> bool:
    lowered = value.strip().lower()
    if lowered not in ("true", "false"):
        raise _invalid(param, f'{param} must be "true" or "false".')
    return lowered == "true"


@dataclass(frozen=True, slots=True)
class EmailFilter:
    statuses: tuple[str, ...] = ()
    sender: str = ""
    subject_contains: str = ""
    date_after: datetime | None = None
    date_before: datetime | None = None
    direction: str = ""
    has_attachments: bool | None = None
    since_id: str = ""

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> EmailFilter:
        """Validate query parameters; a bad value raises ``invalid_parameter`` naming it.

        ``status`` takes one status or a comma-separated list (the console uses lists).
        """
        statuses: tuple[str, ...] = ()
        raw_status = str(params.get("status") or "").strip()
        if raw_status:
            statuses = tuple(s.strip() for s in raw_status.split(",") if s.strip())
            unknown = [s for s in statuses if s not in EmailStatus.values]
            if unknown:
                raise _invalid(
                    "status",
                    f"Unknown status {unknown[0]!r}. Use one of: {', '.join(EmailStatus.values)}.",
                )
        direction = str(params.get("direction") or "").strip()
        if direction and direction not in Direction.values:
            raise _invalid("direction", 'direction must be "inbound" or "outbound".')
        raw_attachments = str(params.get("has_attachments") or "")
        since_id = str(params.get("since_id") or "").strip()
        if len(since_id) > 64:
            raise _invalid("since_id", "since_id must be an email id from a previous response.")
        date_after = str(params.get("date_after") or "")
        date_before = str(params.get("date_before") or "")
        return cls(
            statuses=statuses,
            sender=str(params.get("sender") or "").strip()[:320],
            subject_contains=str(params.get("subject_contains") or "").strip()[:998],
            date_after=parse_instant(date_after, param="date_after") if date_after else None,
            date_before=parse_instant(date_before, param="date_before") if date_before else None,
            direction=direction,
            has_attachments=(
                _parse_bool(raw_attachments, param="has_attachments") if raw_attachments else None
            ),
            since_id=since_id,
        )

    def apply(self, queryset: QuerySet[Email]) -> QuerySet[Email]:
        if self.statuses:
            queryset = queryset.filter(status__in=self.statuses)
        if self.sender:
            queryset = queryset.filter(from_address__icontains=self.sender)
        if self.subject_contains:
            queryset = queryset.filter(subject__icontains=self.subject_contains)
        if self.date_after:
            queryset = queryset.filter(received_at__gt=self.date_after)
        if self.date_before:
            queryset = queryset.filter(received_at__lt=self.date_before)
        if self.direction:
            queryset = queryset.filter(direction=self.direction)
        if self.has_attachments is not None:
            queryset = queryset.filter(has_attachments=self.has_attachments)
        if self.since_id:
            # Ids are time-ordered, so "newer than this email" is a plain comparison.
            queryset = queryset.filter(id__gt=self.since_id)
        return queryset


def _as_seen_by(queryset: QuerySet[Email], *, agent: bool) -> QuerySet[Email]:
    """Emails as the viewer may see them: the operator sees everything, the agent not what
    the oversight policy hides from it."""
    return queryset.exclude(agent_hidden()) if agent else queryset


def _visible(mailbox: Mailbox, *, agent: bool) -> QuerySet[Email]:
    return _as_seen_by(Email.objects.filter(mailbox=mailbox), agent=agent)


def email_list(*, mailbox: Mailbox, params: Mapping[str, Any], agent: bool = True) -> Page:
    """One page of a mailbox's emails, newest first, filtered by ``EmailFilter``. The
    mailbox is a pagination scope, which keeps the page on the (mailbox, id) index."""
    return _email_page(Email.objects.all(), mailbox_id=mailbox.pk, params=params, agent=agent)


def mailbox_email_list(
    *, account: Account, mailbox_id: str, params: Mapping[str, Any], agent: bool = True
) -> Page:
    """``email_list`` for a mailbox named by id, without fetching it first: the check that it
    is an active mailbox of ``account`` rides in the page query as an uncorrelated EXISTS
    (PostgreSQL evaluates it once, before the index scan). Only an empty page costs a second
    query, to tell a missing mailbox from an empty one."""
    owned = Email.objects.filter(Exists(active_mailboxes(account=account).filter(pk=mailbox_id)))
    page = _email_page(owned, mailbox_id=mailbox_id, params=params, agent=agent)
    if not page.items and not active_mailboxes(account=account).filter(pk=mailbox_id).exists():
        raise not_found("mailbox")
    return page


def _email_page(
    queryset: QuerySet[Email], *, mailbox_id: str, params: Mapping[str, Any], agent: bool
) -> Page:
    filtered = EmailFilter.from_params(params).apply(
        _as_seen_by(queryset, agent=agent).only(*SUMMARY_FIELDS)
    )
    return cursor_paginate(filtered, params, default_limit=20, scope=("mailbox_id", mailbox_id))


def active_mailboxes(*, account: Account) -> QuerySet[Mailbox]:
    """The mailboxes an account's keys can address: deleted ones are gone to the API."""
    return Mailbox.objects.filter(account=account, is_active=True)


def mailbox_email_get(
    *, account: Account, mailbox_id: str, email_id: str, agent: bool = True
) -> Email:
    """One email of an active mailbox of ``account`` in one query (the mailbox is checked by
    the join); only when it is missing does a second query tell which not_found to answer."""
    email = (
        _as_seen_by(Email.objects.filter(pk=email_id, mailbox_id=mailbox_id), agent=agent)
        .filter(account=account, mailbox__is_active=True)
        .first()
    )
    if email is None:
        mailbox_missing = not active_mailboxes(account=account).filter(pk=mailbox_id).exists()
        raise not_found("mailbox" if mailbox_missing else "email")
    return email


def email_get(*, mailbox: Mailbox, email_id: str, agent: bool = True) -> Email:
    email = _visible(mailbox, agent=agent).filter(pk=email_id).first()
    if email is None:
        raise not_found("email")
    return email


def email_attachments(*, email: Email) -> list[Attachment]:
    """Attachment metadata (no bytes); none while the agent may not read the content."""
    if not email.has_attachments or not agent_can_read_content(email):
        return []
    return list(Attachment.objects.filter(email=email).defer("content"))


def attachment_get(*, email: Email, filename: str) -> Attachment:
    attachment = (
        Attachment.objects.filter(email=email, filename=filename).first()
        if agent_can_read_content(email)
        else None
    )
    if attachment is None:
        raise not_found("attachment")
    return attachment


@dataclass(frozen=True, slots=True)
class Thread:
    thread_id: str
    emails: list[Email]

    @property
    def participants(self) -> list[str]:
        seen: dict[str, None] = {}
        for email in self.emails:
            for address in [email.from_address, *email.to, *email.cc]:
                if address:
                    seen.setdefault(address.lower(), None)
        return list(seen)

    @property
    def last_activity(self) -> datetime:
        return max(email.received_at for email in self.emails)

    @property
    def has_unanswered_inbound(self) -> bool:
        """True when the newest email the agent received has no outbound after it."""
        return self.emails[-1].direction == Direction.INBOUND


# A thread view is one query however long the thread; this bounds the response size.
MAX_THREAD_EMAILS = 500


def thread_get(*, mailbox: Mailbox, thread_id: str, agent: bool = True) -> Thread:
    emails = list(
        _visible(mailbox, agent=agent)
        .filter(thread_id=thread_id)
        .only(*SUMMARY_FIELDS)
        .order_by("id")[:MAX_THREAD_EMAILS]
    )
    if not emails:
        raise not_found("thread")
    return Thread(thread_id=thread_id, emails=emails)


def spam_list(*, account: Account, params: Mapping[str, Any]) -> Page:
    """Spam across every mailbox of the account (both spam statuses unless one is asked)."""
    status = str(params.get("status") or "").strip()
    if status and status not in SPAM_STATUSES:
        raise _invalid("status", 'status must be "spam_flagged" or "spam_quarantined".')
    queryset = Email.objects.filter(
        account=account, status__in=(status,) if status else SPAM_STATUSES
    ).only(*SUMMARY_FIELDS)
    return cursor_paginate(queryset, params, default_limit=20)


def contact_list(*, account: Account, params: Mapping[str, Any]) -> Page:
    query = str(params.get("q") or "").strip()[:320]
    queryset = Contact.objects.filter(account=account)
    if query:
        queryset = queryset.filter(Q(name__icontains=query) | Q(email__icontains=query))
    return cursor_paginate(queryset, params, default_limit=50)


def suppression_list(*, account: Account, params: Mapping[str, Any]) -> Page:
    return cursor_paginate(Suppression.objects.filter(account=account), params, default_limit=50)
