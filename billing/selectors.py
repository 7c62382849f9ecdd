"""Billing reads: the console's billing overview, and usage over a period from the daily
counters."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.db.models import Sum

from accounts.models import Account
from accounts.plans import PLANS, limits_for
from billing.models import Subscription, SubscriptionStatus, UsageDaily, UsageEventType
from billing.periods import current_period, previous_period
from billing.usage import api_calls_flush
from multimail.epoch import epoch_ms, from_epoch_ms


def billing_overview(*, account: Account) -> dict[str, Any]:
    """What the console's billing page shows: the plan, its limits, the subscription."""
    start, end = current_period(account)
    limits = limits_for(account.plan)
    subscription = Subscription.objects.filter(account=account).first()
    return {
        "plan": account.plan,
        "title": limits.title,
        "limits": {
            "max_mailboxes": limits.max_mailboxes,
            "monthly_email_quota": limits.monthly_email_quota,
            "max_storage_bytes": limits.max_storage_bytes,
            "max_webhooks": limits.max_webhooks,
            "max_api_keys": limits.max_api_keys,
            "max_domains": limits.max_domains,
            "custom_domains": limits.custom_domains,
        },
        "period_start": start,
        "period_end": end,
        "interval": subscription.interval if subscription else None,
        "status": subscription.status if subscription else SubscriptionStatus.NONE,
        "cancel_at_period_end": bool(subscription and subscription.cancel_at_period_end),
        "access_until": subscription.current_period_end if subscription else None,
        "past_due_since": subscription.past_due_since if subscription else None,
        "has_customer": bool(subscription and subscription.stripe_customer_id),
        "plans": [
            {
                "plan": limits.plan,
                "title": limits.title,
                "monthly_price_usd": limits.monthly_price_usd,
                "annual_price_usd": limits.annual_price_usd,
            }
            for limits in PLANS.values()
        ],
    }


def usage_window(
    *, account: Account, period: str, start_ms: int | None, end_ms: int | None
) -> tuple[int, int]:
    """The [from, to] window in epoch ms: the named period (current by default), with
    ``from``/``to`` overriding either end."""
    start, end = previous_period(account) if period == "previous" else current_period(account)
    return (
        start_ms if start_ms is not None else epoch_ms(start),
        end_ms if end_ms is not None else epoch_ms(end),
    )


def _days(account: Account, start_ms: int, end_ms: int) -> Any:
    # Counters are per UTC day: a day counts when it overlaps the window.
    api_calls_flush(account=account)  # so the answer includes calls still in the cache
    return UsageDaily.objects.filter(
        account=account,
        date__gte=from_epoch_ms(start_ms).date(),
        date__lte=from_epoch_ms(end_ms).date(),
    )


def usage_summary(*, account: Account, start_ms: int, end_ms: int) -> dict[str, Any]:
    totals = dict(
        _days(account, start_ms, end_ms)
        .values("event_type")
        .annotate(total=Sum("count"))
        .values_list("event_type", "total")
    )
    return {
        "from": start_ms,
        "to": end_ms,
        **{event_type: int(totals.get(event_type) or 0) for event_type in UsageEventType.values},
    }


def usage_daily(*, account: Account, start_ms: int, end_ms: int) -> dict[str, Any]:
    rows = _days(account, start_ms, end_ms).order_by("date", "event_type")
    return {
        "from": start_ms,
        "to": end_ms,
        "breakdown": "daily",
        "data": [
            {"date": row.date.isoformat(), "event_type": row.event_type, "count": row.count}
            for row in rows
        ],
    }


# A custom window may be long; a chart of more days than this would be unreadable.
MAX_SERIES_DAYS = 63


def usage_day_series(
    *, account: Account, start_ms: int, end_ms: int, event_type: str
) -> list[tuple[date, int]]:
    """One count of ``event_type`` per day of the window, days without usage included."""
    daily = usage_daily(account=account, start_ms=start_ms, end_ms=end_ms)
    counts = {row["date"]: row["count"] for row in daily["data"] if row["event_type"] == event_type}
    first = from_epoch_ms(start_ms).date()
    last = min(from_epoch_ms(end_ms).date(), first + timedelta(days=MAX_SERIES_DAYS - 1))
    days = [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
    return [(day, counts.get(day.isoformat(), 0)) for day in days]
