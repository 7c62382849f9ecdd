"""Recording usage: emails sent and received, API calls, oversight actions."""

from __future__ import annotations

from datetime import date, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import F
from django.utils import timezone

from accounts.models import Account
from billing.models import UsageDaily, UsageEventType
from multimail.cache import counter_add

# Pending API-call counts stay in the cache at most this long; flushes read the last days.
_API_CALLS_TTL_SECONDS = 3 * 24 * 3600
_API_CALLS_FLUSH_DAYS = 2


def usage_record(*, account: Account, event_type: UsageEventType, count: int = 1) -> None:
    """Add ``count`` to today's counter (UTC) with an atomic in-place increment."""
    _usage_add(account=account, day=timezone.now().date(), event_type=event_type, count=count)


def _usage_add(*, account: Account, day: date, event_type: UsageEventType, count: int) -> None:
    updated = UsageDaily.objects.filter(account=account, date=day, event_type=event_type).update(
        count=F("count") + count
    )
    if updated:
        return
    _, created = UsageDaily.objects.get_or_create(
        account=account, date=day, event_type=event_type, defaults={"count": count}
    )
    if not created:  # another request created today's row between our update and insert
        UsageDaily.objects.filter(account=account, date=day, event_type=event_type).update(
            count=F("count") + count
        )


def _api_calls_key(account_id: str, day: date) -> str:
    return f"usage:api_calls:{account_id}:{day.isoformat()}"


def api_call_count(*, account: Account) -> None:
    """Count one authenticated API call: a cache increment per request, and a write to
    UsageDaily at most once per BILLING_API_CALLS_FLUSH_SECONDS per account, so counting
    never costs a database write per request."""
    pending, new_minute = counter_add(
        _api_calls_key(account.pk, timezone.now().date()),
        ttl=_API_CALLS_TTL_SECONDS,
        flag=(f"usage:api_calls:flushed:{account.pk}", settings.BILLING_API_CALLS_FLUSH_SECONDS),
    )
    # A new minute starts: write what accumulated. A lone call (pending == 1) waits for the
    # next flush or usage read, so an account's first call costs no database write.
    if new_minute and pending > 1:
        api_calls_flush(account=account)


def api_calls_flush(*, account: Account) -> None:
    """Move the account's pending API-call counts from the cache to UsageDaily. The
    decrement subtracts only what was read, so calls counted meanwhile stay pending."""
    today = timezone.now().date()
    for back in range(_API_CALLS_FLUSH_DAYS - 1, -1, -1):
        day = today - timedelta(days=back)
        key = _api_calls_key(account.pk, day)
        pending = int(cache.get(key) or 0)
        if pending <= 0:
            continue
        try:
            cache.decr(key, pending)
        except ValueError:  # expired between get and decr: nothing left to move
            continue
        _usage_add(account=account, day=day, event_type=UsageEventType.API_CALLS, count=pending)
