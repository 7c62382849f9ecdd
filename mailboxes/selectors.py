"""Reads of mail: email lists (filtered by mailboxes.filters.EmailFilter, for the API and
the console alike), threads, attachments, spam, contacts, mailbox rows for the console and
the suppression list.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from accounts.models import Account
from mailboxes import search
from mailboxes.filters import EmailFilter
from mailboxes.models import (
    Attachment,
    Contact,
    Direction,
    Domain,
    Email,
    EmailStatus,
    Mailbox,
    Suppression,
    WebhookDelivery,
    WebhookSubscription,
)
from mailboxes.quotas import WARMUP_DAILY_CAPS, counted_sends, warmup_stage
from multimail.errors import ApiError, not_found
from multimail.filters import filtered
from multimail.pagination import (
    Page,
    cursor_page,
    cursor_page_query,
    cursor_paginate,
    decode_cursor,
    parse_limit,
    ranked_paginate,
)
from multimail.statements import CompiledQuery
from oversight.policy import agent_can_read_content, agent_hidden, agent_unsearchable

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
    query, to tell a missing mailbox from an empty one.

    A page with no filter and no search (an agent polling its mailbox: most requests) runs
    a precompiled statement (``_OWNED_PAGE``); any filter takes the ORM path, the same
    query built each time."""
    if _EMAIL_FILTERS.isdisjoint(params):
        limit = parse_limit(params.get("limit"), default=20)
        cursor = params.get("cursor")
        rows = _OWNED_PAGE.rows(
            account_id=account.pk,
            mailbox_id=mailbox_id,
            before=decode_cursor(cursor) if cursor else None,
            agent=agent,
            limit=limit,
        )
        page = cursor_page(rows, limit=limit)
    else:
        owned = _owned(account_id=account.pk, mailbox_id=mailbox_id)
        page = _email_page(owned, mailbox_id=mailbox_id, params=params, agent=agent)
    if not page.items and not active_mailboxes(account=account).filter(pk=mailbox_id).exists():
        raise not_found("mailbox")
    return page


_EMAIL_FILTERS = frozenset(EmailFilter.base_filters)


def _owned(*, account_id: str, mailbox_id: str) -> QuerySet[Email]:
    return Email.objects.filter(Exists(active_mailboxes(account=account_id).filter(pk=mailbox_id)))


def _owned_page(
    *, account_id: str, mailbox_id: str, before: str | None, agent: bool, limit: int
) -> QuerySet[Email]:
    """The page query ``_email_page`` builds when ``params`` hold no filter."""
    return cursor_page_query(
        _as_seen_by(_owned(account_id=account_id, mailbox_id=mailbox_id), agent=agent).only(
            *SUMMARY_FIELDS
        ),
        limit=limit,
        after=before,
        scope=("mailbox_id", mailbox_id),
    )


_OWNED_PAGE = CompiledQuery(_owned_page, params=("account_id", "mailbox_id", "before"))


def _email_page(
    queryset: QuerySet[Email], *, mailbox_id: str, params: Mapping[str, Any], agent: bool
) -> Page:
    if params.get("q"):
        # A search finds words in the content, so it must not find what the agent may not
        # read; it pages by rank, not on the (mailbox, id) index.
        searched = _as_seen_by(queryset.filter(mailbox_id=mailbox_id), agent=agent)
        if agent:
            searched = searched.exclude(agent_unsearchable())
        emails = filtered(EmailFilter(params, queryset=searched.only(*SUMMARY_FIELDS)))
        return ranked_paginate(emails, params, rank=search.RANK, default_limit=20)
    emails = filtered(
        EmailFilter(params, queryset=_as_seen_by(queryset, agent=agent).only(*SUMMARY_FIELDS))
    )
    return cursor_paginate(emails, params, default_limit=20, scope=("mailbox_id", mailbox_id))


def active_mailboxes(*, account: Account | str) -> QuerySet[Mailbox]:
    """The mailboxes an account's keys can address: deleted ones are gone to the API.
    ``account`` is the account or its id."""
    return Mailbox.objects.filter(account=account, is_active=True)


@dataclass(frozen=True, slots=True)
class MailboxRow:
    mailbox: Mailbox
    sent_today: int
    # None once the mailbox is warmed up: only the monthly quota applies then.
    daily_cap: int | None


def mailbox_rows(*, account: Account, now: datetime | None = None) -> list[MailboxRow]:
    """Active mailboxes with today's sends against their warm-up cap: two queries for any
    number of mailboxes. Counts the way the send check does (mailboxes.quotas)."""
    now = now or timezone.now()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    mailboxes = list(active_mailboxes(account=account).select_related("domain"))
    counts = dict(
        counted_sends(account=account, received_at__gte=midnight)
        .values_list("mailbox_id")
        .annotate(total=Count("id"))
        .order_by()
    )
    rows = []
    for mailbox in mailboxes:
        stage = warmup_stage(mailbox=mailbox, now=now)
        rows.append(
            MailboxRow(
                mailbox=mailbox,
                sent_today=counts.get(mailbox.pk, 0),
                daily_cap=WARMUP_DAILY_CAPS[stage - 1] if stage else None,
            )
        )
    return rows


def deleted_mailboxes(*, account: Account) -> list[Mailbox]:
    return list(
        Mailbox.objects.filter(account=account, deleted_at__isnull=False).order_by("-deleted_at")
    )


def operator_mailbox_get(*, account: Account, mailbox_id: str) -> Mailbox:
    """A mailbox of ``account`` for reading by the operator, deleted ones included: a soft
    deleted mailbox stops sending and receiving, but its mail stays readable by the
    operator (changes still go through ``mailbox_get``, which refuses deleted ones)."""
    mailbox = Mailbox.objects.filter(account=account, pk=mailbox_id).first()
    if mailbox is None:
        raise not_found("mailbox")
    return mailbox


def mailbox_email_get(
    *, account: Account, mailbox_id: str, email_id: str, agent: bool = True
) -> Email:
    """One email of an active mailbox of ``account`` in one query (the mailbox is checked by
    the join); only when it is missing does a second query tell which not_found to answer.
    The query is precompiled (``_ACTIVE_MAILBOX_EMAIL``): compiling it cost more CPU than
    the rest of the request."""
    found = _ACTIVE_MAILBOX_EMAIL.rows(
        account_id=account.pk, mailbox_id=mailbox_id, email_id=email_id, agent=agent
    )
    if not found:
        mailbox_missing = not active_mailboxes(account=account).filter(pk=mailbox_id).exists()
        raise not_found("mailbox" if mailbox_missing else "email")
    return found[0]


def _active_mailbox_email(
    *, account_id: str, mailbox_id: str, email_id: str, agent: bool
) -> QuerySet[Email]:
    # As ``.first()`` sends it: ordered by pk, one row.
    return (
        _as_seen_by(Email.objects.filter(pk=email_id, mailbox_id=mailbox_id), agent=agent)
        .filter(account_id=account_id, mailbox__is_active=True)
        .select_related("mailbox")  # joined anyway; the content version reads it
        .order_by("pk")[:1]
    )


_ACTIVE_MAILBOX_EMAIL = CompiledQuery(
    _active_mailbox_email, params=("account_id", "mailbox_id", "email_id")
)


def email_get(*, mailbox: Mailbox, email_id: str, agent: bool = True) -> Email:
    email = _visible(mailbox, agent=agent).filter(pk=email_id).first()
    if email is None:
        raise not_found("email")
    return email


def attachment_list(*, email: Email) -> QuerySet[Attachment]:
    """Every attachment's metadata (no bytes), as the operator sees it."""
    return Attachment.objects.filter(email=email).defer("content")


def email_attachments(*, email: Email) -> list[Attachment]:
    """Attachment metadata (no bytes); none while the agent may not read the content."""
    if not email.has_attachments or not agent_can_read_content(email):
        return []
    return list(attachment_list(email=email))


def attachment_get(*, email: Email, filename: str, agent: bool = True) -> Attachment:
    """One attachment with its bytes; the agent gets none while it may not read the
    content, the operator always."""
    attachment = (
        Attachment.objects.filter(email=email, filename=filename).first()
        if not agent or agent_can_read_content(email)
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


def suppression_list(*, account: Account, params: Mapping[str, Any], search: str = "") -> Page:
    """One page of the list; ``search`` (the console's) keeps the addresses containing it,
    so both ``ann@example.com`` and a whole domain (``example.com``) can be looked up."""
    entries = Suppression.objects.filter(account=account)
    if search.strip():
        entries = entries.filter(email_address__icontains=search.strip())
    return cursor_paginate(entries, params, default_limit=50)


def domain_list(*, account: Account) -> QuerySet[Domain]:
    return Domain.objects.filter(account=account)


def webhook_subscription_list(*, account: Account) -> QuerySet[WebhookSubscription]:
    return WebhookSubscription.objects.filter(account=account)


def webhook_delivery_list(*, subscription: WebhookSubscription) -> QuerySet[WebhookDelivery]:
    """A subscription's delivery history without what each attempt exchanged (a list shows
    none of it)."""
    return WebhookDelivery.objects.filter(subscription=subscription).defer(
        "payload", "request_headers", "response_headers", "response_body"
    )


def webhook_delivery_get(*, subscription: WebhookSubscription, delivery_id: str) -> WebhookDelivery:
    delivery = WebhookDelivery.objects.filter(subscription=subscription, pk=delivery_id).first()
    if delivery is None:
        raise not_found("webhook", "That webhook delivery does not exist in this account.")
    return delivery


# --- The outbound worker's reads (one scan-and-deliver task per email) -----------------


def _email_in_status(*, email_id: str, status: str) -> QuerySet[Email]:
    return Email.objects.filter(pk=email_id, status=status)


_EMAIL_IN_STATUS = CompiledQuery(_email_in_status, params=("email_id",))


def email_in_status(*, email_id: str, status: EmailStatus) -> Email | None:
    """The email, if it is still in ``status`` (unlocked): the worker's first read of each
    email, precompiled (``status`` is part of the shape: a few, fixed)."""
    found = _EMAIL_IN_STATUS.rows(email_id=email_id, status=str(status))
    return found[0] if found else None


def _sender_for_update(*, mailbox_id: str) -> QuerySet[Mailbox]:
    return (
        Mailbox.objects.select_for_update(no_key=True)
        .select_related("account")
        .filter(pk=mailbox_id)
    )


_SENDER_FOR_UPDATE = CompiledQuery(_sender_for_update, params=("mailbox_id",))


def sender_locked(*, mailbox_id: str) -> Mailbox:
    """The sending mailbox with its account, both rows locked FOR NO KEY UPDATE in one
    statement (the caller's transaction keeps the locks), precompiled: every outbound
    email's scan takes it. Raises Mailbox.DoesNotExist, as ``get`` would."""
    found = _SENDER_FOR_UPDATE.rows(mailbox_id=mailbox_id)
    if not found:
        raise Mailbox.DoesNotExist(f"no mailbox {mailbox_id}")
    return found[0]


# --- The send's reads (every accepted send takes both) ----------------------------------


def _mailbox_locked(
    *,
    account_id: str,
    mailbox_id: str,
    with_subscription: bool,
    suppressed_among: Collection[str] | None,
) -> QuerySet[Mailbox]:
    # NO KEY UPDATE: it serializes writers of the mailbox, yet does not block the
    # foreign-key checks of rows that merely reference it (those would deadlock). Only the
    # mailbox and account rows: the subscription is outer-joined, and read as committed.
    queryset = (
        active_mailboxes(account=account_id)
        .filter(pk=mailbox_id)
        .select_for_update(no_key=True, of=("self", "account"))
        .select_related("account", *(["account__subscription"] if with_subscription else []))
    )
    if suppressed_among is not None:
        queryset = queryset.annotate(
            any_suppressed=Exists(
                Suppression.objects.filter(
                    account_id=OuterRef("account_id"), email_address__any_of=suppressed_among
                )
            )
        )
    return queryset[:1]  # as ``.first()`` sends it (the model's ordering, one row)


_MAILBOX_LOCKED = CompiledQuery(
    _mailbox_locked, params=("account_id", "mailbox_id"), arrays=("suppressed_among",)
)


def mailbox_locked(
    *,
    account_id: str,
    mailbox_id: str,
    with_subscription: bool = False,
    suppressed_among: Collection[str] | None = None,
) -> Mailbox | None:
    """The active mailbox of the account, its row and the account's locked FOR NO KEY
    UPDATE in one statement (the caller's transaction keeps the locks), in the order every
    writer takes them; None when there is none. ``with_subscription`` reads the account's
    subscription in the same statement; ``suppressed_among`` (lowercased addresses) adds
    ``any_suppressed``: whether any of them is on the account's suppression list.
    Precompiled: every send and every change of a mailbox takes it."""
    found = _MAILBOX_LOCKED.rows(
        account_id=account_id,
        mailbox_id=mailbox_id,
        with_subscription=with_subscription,
        suppressed_among=suppressed_among,
    )
    return found[0] if found else None


def _recent_send(*, mailbox_id: str, content_hash: str, since: datetime) -> QuerySet[Email]:
    # The id only: the row itself (bodies included) is of no use to the duplicate check.
    return counted_sends(
        mailbox_id=mailbox_id, content_hash=content_hash, received_at__gte=since
    ).only("pk")[:1]


_RECENT_SEND = CompiledQuery(
    _recent_send, params=("mailbox_id", "content_hash"), datetimes=("since",)
)


def recent_send_id(*, mailbox_id: str, content_hash: str, since: datetime) -> str | None:
    """The newest outbound email of the mailbox with this content hash received at or
    after ``since`` (aware), not refused before leaving (rejected or cancelled mail never
    left): the duplicate check's read, precompiled."""
    found = _RECENT_SEND.rows(mailbox_id=mailbox_id, content_hash=content_hash, since=since)
    return found[0].pk if found else None


# --- Inbound recipients ---------------------------------------------------------------


def inbound_copies(*, mailbox_id: str | OuterRef, message_id: str) -> QuerySet[Email]:
    """The inbound email ``mailbox_id`` stored under ``message_id`` (one at most: the
    (mailbox, Message-ID) constraint), as stored: cut to the column's 998 characters."""
    return Email.objects.filter(
        mailbox_id=mailbox_id, direction=Direction.INBOUND, message_id=message_id[:998]
    )


def mailboxes_at(addresses: Collection[str]) -> QuerySet[Mailbox]:
    """The active mailboxes at ``addresses`` (normalized: lowercase; the queryset, not yet
    read): where this server delivers mail. An empty address is nobody's."""
    distinct = [address for address in dict.fromkeys(addresses) if address]
    return Mailbox.objects.filter(address__any_of=distinct, is_active=True)


def _mailbox_ids_at(*, addresses: Collection[str]) -> QuerySet[Mailbox]:
    return mailboxes_at(addresses).only("pk", "address")


# One shape whatever the number of addresses: they are one array parameter.
_MAILBOX_IDS_AT = CompiledQuery(_mailbox_ids_at, params=(), arrays=("addresses",))


def mailbox_ids_at(*, addresses: Iterable[str]) -> dict[str, str]:
    """The id of each active mailbox at ``addresses`` (normalized), by address: which of
    an outbound email's recipients this server delivers to itself. Precompiled: every
    delivery asks, and compiling the queryset cost more CPU than running it."""
    distinct = [address for address in dict.fromkeys(addresses) if address]
    if not distinct:
        return {}
    return {mailbox.address: mailbox.pk for mailbox in _MAILBOX_IDS_AT.rows(addresses=distinct)}


def _recipient_mailboxes(*, message_id: str, addresses: Collection[str]) -> QuerySet[Mailbox]:
    copies = inbound_copies(mailbox_id=OuterRef("pk"), message_id=message_id)
    return (
        mailboxes_at(addresses)
        .select_related("account")
        .annotate(stored_copy_id=Subquery(copies.values("pk")[:1]))
    )


# One shape whatever the number of recipients: they are one array parameter.
_RECIPIENT_MAILBOXES = CompiledQuery(
    _recipient_mailboxes, params=("message_id",), arrays=("addresses",)
)


def recipient_mailboxes(
    *, addresses: Iterable[str], message_id: str
) -> list[tuple[Mailbox, str | None]]:
    """The active mailboxes at ``addresses`` (normalized), each with its account and the id
    of the inbound email it already stored under ``message_id`` (None when none). One
    statement, precompiled: compiling it cost more CPU than storing the email."""
    distinct = [address for address in dict.fromkeys(addresses) if address]
    if not distinct:
        return []  # nothing can match: no statement, as the ORM's empty IN sends none
    # The builder cuts the Message-ID as stored; a placeholder's value goes in as given.
    found = _RECIPIENT_MAILBOXES.rows(message_id=message_id[:998], addresses=distinct)
    return [(mailbox, mailbox.stored_copy_id) for mailbox in found]  # type: ignore[attr-defined]
