"""Approvals that do not sit forever: a held email waiting longer than the account's
``approval_expiry_hours`` (0: never) is rejected with "expired after N hours", and the
operator is reminded once when half that time has passed.

The periodic task (``mailboxes.deadline_tasks.approval_deadlines``) calls
``approval_deadlines_run`` and sends the reminders it stored.
An email's wait is counted from when it was held (``status_changed_at``; a change by the
agent while it waits does not restart it). Expiring is a decision by the system: it takes
the mailbox row lock every decision takes, then the same compare-and-set, so of an expiry
and a concurrent operator decision exactly one wins.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.actors import Actor
from accounts.models import Account
from mailboxes import lifecycle
from mailboxes.models import Email, EmailStatus, Mailbox
from oversight.holds import approval_links_spend, expiry_remind
from oversight.models import OperatorNotification
from oversight.policy import PENDING_STATUSES

logger = logging.getLogger("multimail.oversight")

# Each run handles at most this many emails per account and kind; the next run the rest.
BATCH = 500


def expiry_reason(hours: int) -> str:
    return f"expired after {hours} hours"


def held_deadline(*, email: Email, hours: int) -> datetime | None:
    """When a held email expires (None: the account's held mail never does)."""
    return email.status_changed_at + timedelta(hours=hours) if hours else None


@dataclass(frozen=True, slots=True)
class DeadlinesRun:
    expired: int
    # The reminders stored (committed), for the caller to send.
    reminder_ids: list[str]


def approval_deadlines_run(*, now: datetime | None = None) -> DeadlinesRun:
    """Expire and remind, for every account whose held mail expires."""
    now = now or timezone.now()
    expired = 0
    reminder_ids: list[str] = []
    accounts = (
        Account.objects.filter(approval_expiry_hours__gt=0, emails__status__in=PENDING_STATUSES)
        .distinct()
        .values_list("pk", "approval_expiry_hours")
    )
    for account_id, hours in accounts:
        held = Email.objects.filter(account_id=account_id, status__in=PENDING_STATUSES)
        due = held.filter(status_changed_at__lte=now - timedelta(hours=hours))
        for email_id in due.order_by("pk").values_list("pk", flat=True)[:BATCH]:
            expired += email_expire(email_id=email_id, hours=hours, now=now)
        halfway = (
            held.filter(status_changed_at__lte=now - timedelta(hours=hours) / 2)
            .exclude(status_changed_at__lte=now - timedelta(hours=hours))
            .exclude(notifications__kind=OperatorNotification.Kind.EXPIRY_REMINDER)
        )
        for email_id in halfway.order_by("pk").values_list("pk", flat=True)[:BATCH]:
            notification_id = email_remind(email_id=email_id, now=now)
            if notification_id is not None:
                reminder_ids.append(notification_id)
    if expired or reminder_ids:
        logger.info("approval_deadlines expired=%d reminded=%d", expired, len(reminder_ids))
    return DeadlinesRun(expired=expired, reminder_ids=reminder_ids)


@transaction.atomic
def email_expire(*, email_id: str, hours: int, now: datetime) -> bool:
    """Reject one held email that waited ``hours``; False when it was decided, cancelled or
    held again more recently meanwhile (re-read under the lock decisions take)."""
    mailbox = (
        Mailbox.objects.select_for_update(no_key=True)
        .select_related("account")
        .filter(pk__in=Email.objects.filter(pk=email_id).values("mailbox_id"))
        .first()
    )
    if mailbox is None:
        return False
    email = Email.objects.get(pk=email_id)
    email.mailbox, email.account = mailbox, mailbox.account
    if email.status not in PENDING_STATUSES:
        return False
    if email.status_changed_at > now - timedelta(hours=hours):
        return False
    reason = expiry_reason(hours)
    won = lifecycle.email_record_decision(
        email=email,
        to=EmailStatus.REJECTED,
        actor=Actor.system(mailbox.account, "approval expiry"),
        version="",
        reason=reason,
        failure_reason=reason,
        at=now,
    )
    if won:
        approval_links_spend(email_id=email.pk, now=now)
    return won


def email_remind(*, email_id: str, now: datetime) -> str | None:
    """Store the operator's one reminder of a held email; its id, or None when it was
    reminded already or is no longer held."""
    try:
        with transaction.atomic():
            email = (
                Email.objects.select_for_update(of=("self",))
                .select_related("account", "mailbox")
                .filter(pk=email_id, status__in=PENDING_STATUSES)
                .first()
            )
            if email is None:
                return None
            return expiry_remind(email=email, now=now)
    except IntegrityError:  # a concurrent run reminded first (the unique constraint)
        return None
