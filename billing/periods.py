"""Quota periods: monthly windows computed from an anchor, without any scheduled job."""

from __future__ import annotations

import calendar
from datetime import datetime

from django.core.exceptions import ObjectDoesNotExist
from django.utils import timezone

from accounts.models import Account
from accounts.plans import Plan
from accounts.principals import principal_versions_bump
from billing.models import LIVE_STATUSES


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` plus whole calendar months, the day clamped to the month's length."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, _month_days(year, month)))


def _month_days(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def monthly_window(anchor: datetime, now: datetime) -> tuple[datetime, datetime]:
    """The monthly window containing ``now`` among anchor, anchor+1 month, ... Always
    computed from the anchor itself, so a 31st does not drift to the 28th."""
    months = max(0, (now.year - anchor.year) * 12 + now.month - anchor.month)
    start = add_months(anchor, months)
    if start > now and months > 0:
        months -= 1
        start = add_months(anchor, months)
    return start, add_months(anchor, months + 1)


def period_anchor(account: Account) -> datetime:
    """Paid plans count months from the subscription's current period start (an annual
    plan still has a monthly quota); Starter counts them from the account's creation."""
    if account.plan != Plan.STARTER:
        try:
            subscription = account.subscription  # type: ignore[attr-defined]
        except ObjectDoesNotExist:
            subscription = None
        if (
            subscription is not None
            and subscription.status in LIVE_STATUSES
            and subscription.current_period_start is not None
        ):
            return subscription.current_period_start  # type: ignore[no-any-return]
    return account.created_at


def current_period(account: Account, *, now: datetime | None = None) -> tuple[datetime, datetime]:
    """(start, end) of the account's current monthly quota period.

    Lazily keeps ``account.period_start`` (what quota counts read) equal to the start: when
    a month has passed it is advanced with a compare-and-set, so no beat job is needed and
    concurrent readers write the same value at most once.
    """
    start, end = monthly_window(period_anchor(account), now or timezone.now())
    if account.period_start != start:
        if Account.objects.filter(pk=account.pk, period_start=account.period_start).update(
            period_start=start
        ):
            principal_versions_bump([account.pk])
        account.period_start = start
    return start, end


def previous_period(account: Account, *, now: datetime | None = None) -> tuple[datetime, datetime]:
    start, _ = current_period(account, now=now)
    anchor = period_anchor(account)
    if start <= anchor:  # no earlier window under this anchor: the month before it
        return add_months(start, -1), start
    months = (start.year - anchor.year) * 12 + start.month - anchor.month
    return add_months(anchor, months - 1), start
