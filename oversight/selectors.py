"""Oversight reads: the pending queue and the hosted approval link."""

from __future__ import annotations

import hashlib
from typing import Any

from django.db.models import QuerySet

from accounts.models import Account
from mailboxes.models import Email
from oversight.models import ApprovalLink
from oversight.policy import PENDING_STATUSES


def token_hash(token: str) -> str:
    """Only this digest of an approval token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


# What the queue shows of each email.
PENDING_FIELDS = (
    "id",
    "mailbox_id",
    "direction",
    "from_address",
    "to",
    "subject",
    "markdown",
    "status",
    "received_at",
)


def pending_emails(*, account: Account) -> QuerySet[Email]:
    """Emails waiting for the operator, both directions, newest first (paged by id)."""
    return Email.objects.filter(account=account, status__in=PENDING_STATUSES).only(*PENDING_FIELDS)


def pending_email_rows(*, account: Account) -> QuerySet[Any]:
    """The same queue as named rows of PENDING_FIELDS: the API page only renders them, so it
    skips building a model instance per email."""
    return pending_emails(account=account).values_list(*PENDING_FIELDS, named=True)


def approval_link_find(*, token: str) -> ApprovalLink | None:
    """The link for a token with the email it decides (any state: the page explains why a
    spent or expired link no longer works)."""
    return (
        ApprovalLink.objects.select_related("email__mailbox", "email__account")
        .filter(token_hash=token_hash(token))
        .first()
    )
