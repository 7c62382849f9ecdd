"""Sending quotas and storage: what an account has used against its plan's limits.

``send_limits_check`` is called by the send path with the account and mailbox rows locked
(select_for_update), so two concurrent sends cannot both pass the last free slot: the
second waits for the first to commit and then counts its email.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import QuerySet, Sum
from django.utils import timezone

from accounts.models import Account
from billing.periods import current_period
from billing.plans import WARMUP_DAILY_CAPS, limits_for
from mailboxes.models import Attachment, Direction, Email, EmailStatus, Mailbox
from multimail.errors import ApiError

# Outbound emails that count against the monthly quota: everything accepted that was not
# refused before leaving (rejected by the filter or operator, cancelled).
_NOT_COUNTED = (EmailStatus.REJECTED, EmailStatus.CANCELLED)


def counted_sends(**filters: Any) -> QuerySet[Email]:
    """Outbound emails that count against the monthly quota and warm-up caps (``filters``
    narrow them): the send check and the console's counts must agree."""
    return Email.objects.filter(direction=Direction.OUTBOUND, **filters).exclude(
        status__in=_NOT_COUNTED
    )


def emails_sent_this_period(*, account: Account) -> int:
    return counted_sends(account=account, received_at__gte=current_period(account)[0]).count()


def storage_used_bytes(*, account: Account) -> int:
    bodies = Email.objects.filter(account=account).aggregate(total=Sum("size_bytes"))["total"]
    files = Attachment.objects.filter(email__account=account).aggregate(total=Sum("size"))["total"]
    return int(bodies or 0) + int(files or 0)


def warmup_stage(*, mailbox: Mailbox, now: datetime | None = None) -> int | None:
    """Day of the mailbox's life (1 = the day it was created, UTC), or None once warmed up."""
    today = (now or timezone.now()).date()
    stage = (today - mailbox.created_at.date()).days + 1
    return stage if 1 <= stage <= len(WARMUP_DAILY_CAPS) else None


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(int((moment - now).total_seconds()) + 1, 1)


def send_limits_check(*, account: Account, mailbox: Mailbox, adding_bytes: int) -> None:
    """Raise the catalog error for the first limit one more outbound email would break."""
    now = timezone.now()
    limits = limits_for(account.plan)

    _, period_end = current_period(account, now=now)
    used = emails_sent_this_period(account=account)
    if used >= limits.monthly_email_quota:
        raise ApiError(
            "monthly_quota_exceeded",
            f"This account sent its {limits.monthly_email_quota} emails for this month "
            f"(plan {account.plan}). Wait until {period_end.isoformat()} or upgrade the plan "
            "with POST /v1/billing/checkout.",
            headers={"Retry-After": str(_seconds_until(period_end, now))},
            quota=limits.monthly_email_quota,
            used=used,
            resets_at=period_end.isoformat().replace("+00:00", "Z"),
        )

    stage = warmup_stage(mailbox=mailbox, now=now)
    if stage is not None:
        daily_limit = WARMUP_DAILY_CAPS[stage - 1]
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        daily_sent = counted_sends(mailbox=mailbox, received_at__gte=midnight).count()
        if daily_sent >= daily_limit:
            tomorrow = midnight + timedelta(days=1)
            raise ApiError(
                "warmup_limit_exceeded",
                f"This mailbox is on day {stage} of its warm-up and may send {daily_limit} "
                "emails today. Wait until midnight UTC (Retry-After); the cap rises each day "
                "for its first 7 days.",
                headers={
                    "Retry-After": str(_seconds_until(tomorrow, now)),
                    "X-Warmup-Stage": str(stage),
                    "X-Warmup-Daily-Limit": str(daily_limit),
                },
                warmup_stage=stage,
                daily_sent=daily_sent,
                daily_limit=daily_limit,
            )

    used_bytes = storage_used_bytes(account=account)
    if used_bytes + adding_bytes > limits.max_storage_bytes:
        raise ApiError(
            "storage_quota_exceeded",
            f"Stored mail uses {used_bytes} of {limits.max_storage_bytes} bytes and this email "
            "does not fit. Delete old emails or upgrade the plan.",
            used_bytes=used_bytes,
            limit_bytes=limits.max_storage_bytes,
        )
