"""Oversight reads: the pending queue and the hosted approval link."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Max, QuerySet

from accounts.models import Account
from mailboxes.models import Email
from multimail.pagination import Page, cursor_paginate
from oversight.facts import FACTS_RELATED
from oversight.models import ApprovalLink
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


def pending_count(*, account: Account) -> int:
    return pending_emails(account=account).count()


@dataclass(frozen=True, slots=True)
class QueueSummary:
    count: int
    # A short fingerprint of the pending set: it changes when mail is held or decided, so
    # a polling console can tell that nothing changed without rendering the queue.
    version: str


def pending_summary(*, account: Account) -> QueueSummary:
    summary = pending_emails(account=account).aggregate(count=Count("id"), latest=Max("id"))
    raw = f"{summary['count']}:{summary['latest']}"
    return QueueSummary(
        count=summary["count"], version=hashlib.sha256(raw.encode()).hexdigest()[:16]
    )


def pending_review_page(*, account: Account, params: Mapping[str, Any]) -> Page:
    """One page of the queue as the console shows it (the decision facts read the rest)."""
    return cursor_paginate(pending_emails(account=account), params, default_limit=QUEUE_PAGE_SIZE)


def pending_review_get(*, account: Account, email_id: str) -> Email | None:
    """One held email for review; None once it is decided (or was never held)."""
    return pending_emails(account=account).filter(pk=email_id).first()


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
