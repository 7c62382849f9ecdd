"""Oversight reads: the pending queue and the hosted approval link."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, F, Max, QuerySet

from accounts.models import Account
from accounts.selectors import admin_actions_awaiting
from mailboxes.models import Email, Mailbox
from multimail.filters import filtered
from multimail.pagination import Page, cursor_paginate
from multimail.statements import CompiledQuery
from oversight.facts import FACTS_RELATED
from oversight.filters import QueueFilter
from oversight.models import ApprovalLink, OperatorNotification
from oversight.policy import PENDING_STATUSES

QUEUE_PAGE_SIZE = 20


def token_hash(token: str) -> str:
    """Only this digest of an approval token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def pending_emails(*, account: Account) -> QuerySet[Email]:
    """Emails waiting for the operator, both directions, newest first (paged by id), with
    the rows their decision facts read (oversight.facts)."""
    return Email.objects.filter(account=account, status__in=PENDING_STATUSES).select_related(
        *FACTS_RELATED
    )


@dataclass(frozen=True, slots=True)
class MailboxCount:
    mailbox_id: str
    address: str
    count: int


@dataclass(frozen=True, slots=True)
class OperatorCounts:
    """Every count the console shows (title, navigation badges, per mailbox), read
    together so that no two of them can disagree."""

    pending: int
    per_mailbox: list[MailboxCount]
    # Admin actions an agent asked for that wait for the operator (the Approvals badge).
    approvals: int
    # A short fingerprint of all of the above: it changes when mail is held or decided,
    # when a held email changes (each change notifies the operator anew) or when an admin
    # action arrives or ends, so a polling console can tell that nothing changed without
    # rendering anything.
    version: str


def operator_counts(*, account: Account) -> OperatorCounts:
    rows = (
        Email.objects.filter(account=account, status__in=PENDING_STATUSES)
        .values("mailbox_id", "mailbox__address")
        .annotate(count=Count("id"), latest=Max("id"))
        .order_by("mailbox__address")
    )
    per_mailbox = [
        MailboxCount(row["mailbox_id"], row["mailbox__address"], row["count"]) for row in rows
    ]
    latest = max((row["latest"] for row in rows), default="")
    notified = OperatorNotification.objects.filter(account=account).aggregate(latest=Max("id"))
    approvals = admin_actions_awaiting(account=account).count()
    pending = sum(item.count for item in per_mailbox)
    raw = f"{pending}:{latest}:{notified['latest']}:{approvals}"
    return OperatorCounts(
        pending=pending,
        per_mailbox=per_mailbox,
        approvals=approvals,
        version=hashlib.sha256(raw.encode()).hexdigest()[:16],
    )


def queue_filter(*, account: Account, params: Mapping[str, Any]) -> QueueFilter:
    """The queue's filters bound to ``params`` (the console renders their form)."""
    return QueueFilter(params, account=account, queryset=pending_emails(account=account))


def pending_review_page(
    *, account: Account, params: Mapping[str, Any], oldest_first: bool = True
) -> Page:
    """One page of the queue as the console shows it, narrowed by ``QueueFilter`` (the
    decision facts read the rest): oldest first by default, since the oldest is the next
    to expire."""
    return cursor_paginate(
        filtered(queue_filter(account=account, params=params)),
        params,
        default_limit=QUEUE_PAGE_SIZE,
        oldest_first=oldest_first,
    )


def pending_review_next(
    *, account: Account, params: Mapping[str, Any], after_id: str, oldest_first: bool = True
) -> Email | None:
    """The held email to review after ``after_id`` (just decided): the next one in the
    queue's order and filters, else the first one left."""
    queryset = filtered(queue_filter(account=account, params=params)).exclude(pk=after_id)
    ordering = "id" if oldest_first else "-id"
    after = "gt" if oldest_first else "lt"
    following = queryset.filter(**{f"id__{after}": after_id}).order_by(ordering).first()
    return following or queryset.order_by(ordering).first()


def pending_review_get(*, account: Account, email_id: str) -> Email | None:
    """One held email for review; None once it is decided (or was never held)."""
    return pending_emails(account=account).filter(pk=email_id).first()


def pending_review_many(*, account: Account, email_ids: list[str]) -> list[Email]:
    """The held emails among ``email_ids``, in that order (for a batch's confirmation)."""
    found = {email.pk: email for email in pending_emails(account=account).filter(pk__in=email_ids)}
    return [found[pk] for pk in email_ids if pk in found]


def approval_link_find(*, token: str) -> ApprovalLink | None:
    """The link for a token with the email it decides (any state: the page explains why a
    spent or expired link no longer works)."""
    return (
        ApprovalLink.objects.select_related(
            "email__account", *(f"email__{name}" for name in FACTS_RELATED)
        )
        .filter(token_hash=token_hash(token))
        .first()
    )


def approval_link_newest(*, link: ApprovalLink) -> ApprovalLink:
    """The link that replaced ``link``, and any that replaced that one in turn (a few rows:
    one per edit of the held email)."""
    seen = {link.pk}
    while link.replaced_by_id is not None and link.replaced_by_id not in seen:
        seen.add(link.replaced_by_id)
        link = ApprovalLink.objects.get(pk=link.replaced_by_id)
    return link


def link_notification(*, link: ApprovalLink) -> OperatorNotification | None:
    return OperatorNotification.objects.filter(link=link).first()


def undelivered_notifications(*, email_ids: list[str]) -> dict[str, list[OperatorNotification]]:
    """Per email, its operator notifications that failed or are being retried: the console
    shows them, so the operator knows what they were not told."""
    found: dict[str, list[OperatorNotification]] = {}
    rows = OperatorNotification.objects.filter(email_id__in=email_ids, attempts__gt=0).exclude(
        status__in=(OperatorNotification.Status.SENT, OperatorNotification.Status.SKIPPED)
    )
    for notification in rows:
        found.setdefault(notification.email_id, []).append(notification)
    return found


# --- A decision's reads (under its transaction) ------------------------------------------


def _decision_mailbox(*, account_id: str, email_id: str) -> QuerySet[Mailbox]:
    # NO KEY UPDATE, as every writer of the mailbox row takes it: decisions still queue,
    # but mail stored into the mailbox meanwhile (whose foreign-key check needs KEY SHARE on
    # this row) is not held up behind them. The mailbox is found through the email in the
    # locking statement itself.
    of_email = Email.objects.filter(account_id=account_id, pk=email_id).values("mailbox_id")
    return Mailbox.objects.select_for_update(no_key=True).filter(pk__in=of_email)[:1]


_DECISION_MAILBOX = CompiledQuery(_decision_mailbox, params=("account_id", "email_id"))


def decision_mailbox_locked(*, account_id: str, email_id: str) -> Mailbox | None:
    """The mailbox of the account's email ``email_id``, its row locked FOR NO KEY UPDATE
    (the caller's transaction keeps the lock); None when the account has no such email.
    Precompiled: every decision takes it."""
    found = _DECISION_MAILBOX.rows(account_id=account_id, email_id=email_id)
    return found[0] if found else None


def _decision_email(*, email_id: str) -> QuerySet[Email]:
    # As ``get`` sends it, less its LIMIT: a primary key matches one row at most.
    return (
        Email.objects.annotate(account_sending_stopped=F("account__sending_stopped"))
        .filter(pk=email_id)
        .order_by()
    )


_DECISION_EMAIL = CompiledQuery(_decision_email, params=("email_id",))


def decision_email(*, email_id: str) -> Email:
    """The email with its account's stop switch (``account_sending_stopped``), read as
    committed in one statement, precompiled. Raises Email.DoesNotExist, as ``get`` would."""
    found = _DECISION_EMAIL.rows(email_id=email_id)
    if not found:
        raise Email.DoesNotExist(f"no email {email_id}")
    return found[0]
