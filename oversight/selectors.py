"""Oversight reads: the pending queue and the hosted approval link."""

from __future__ import annotations

import hashlib

from django.db.models import QuerySet

from accounts.models import Account
from mailboxes.models import Email
from oversight.facts import FACTS_RELATED
from oversight.models import ApprovalLink
from oversight.policy import PENDING_STATUSES


def token_hash(token: str) -> str:
    """Only this digest of an approval token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def pending_emails(*, account: Account) -> QuerySet[Email]:
    """Emails waiting for the operator, both directions, newest first (paged by id), with
    the rows their decision facts read (oversight.facts)."""
    return Email.objects.filter(account=account, status__in=PENDING_STATUSES).select_related(
        *FACTS_RELATED
    )


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
