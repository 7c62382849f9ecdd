"""Recording usage: emails sent and received, API calls, oversight actions."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import F
from django.utils import timezone
from rest_framework.request import Request

from accounts.models import Account, ApiKey
from billing.models import UsageDaily, UsageEventType
from multimail.cache import Counted, Counter, counters_add
from multimail.exceptions import is_api_path
from multimail.statements import CompiledUpdate

# Pending API-call counts stay in the cache at most this long; flushes read the last days.
_API_CALLS_TTL_SECONDS = 3 * 24 * 3600
_API_CALLS_FLUSH_DAYS = 2


def usage_record(*, account: Account, event_type: UsageEventType, count: int = 1) -> None:
    """Add ``count`` to today's counter (UTC) with an atomic in-place increment."""
    _usage_add(account=account, day=timezone.now().date(), event_type=event_type, count=count)


def _usage_add(*, account: Account, day: date, event_type: UsageEventType, count: int) -> None:
    row = {"account_id": account.pk, "day": day, "event_type": event_type}
    if _usage_increment(row, count):
        return
    _, created = UsageDaily.objects.get_or_create(
        account=account, date=day, event_type=event_type, defaults={"count": count}
    )
    if not created:  # another request created today's row between our update and insert
        _usage_increment(row, count)


# An account's counter of one event type for one day. Its increment runs with every email
# sent or received, so it is compiled once per process (the count is a parameter).
_USAGE_ROW = CompiledUpdate(
    lambda account_id, day, event_type: UsageDaily.objects.filter(
        account_id=account_id, date=day, event_type=event_type
    ),
    params=("account_id", "day"),
)


def _usage_increment(row: dict[str, Any], count: int) -> int:
    return _USAGE_ROW.update({"count": F("count") + count}, **row)


def _api_calls_key(account_id: str, day: date) -> str:
    return f"usage:api_calls:{account_id}:{day.isoformat()}"


def _api_calls_counter(account_id: str) -> Counter:
    return Counter(
        _api_calls_key(account_id, timezone.now().date()),
        ttl=_API_CALLS_TTL_SECONDS,
        flag=(f"usage:api_calls:flushed:{account_id}", settings.BILLING_API_CALLS_FLUSH_SECONDS),
    )


def api_call_count(*, account: Account) -> None:
    """Count one authenticated API call: a cache increment per request, and a write to
    UsageDaily at most once per BILLING_API_CALLS_FLUSH_SECONDS per account, so counting
    never costs a database write per request."""
    (counted,), _ = counters_add([_api_calls_counter(account.pk)])
    api_call_counted(account=account, counted=counted)


def api_call_counted(*, account: Account, counted: Counted) -> None:
    """After the increment (``api_call_count``'s, or authentication's, which makes it in its
    own round trip): a new minute starts, write what accumulated. A lone call (pending == 1)
    waits for the next flush or usage read, so an account's first call costs no database
    write."""
    if counted.flagged and counted.value > 1:
        api_calls_flush(account=account)


def api_call_counter(request: Request, key: ApiKey) -> Counter | None:
    """The count of an API request that authentication makes in the round trip checking its
    remembered key (settings.API_CALL_COUNTER names this function), so billing adds no trip
    of its own; the request is counted whatever the view answers, as ApiCallUsageMiddleware
    counts the others. A view that reports API calls (``reports_api_calls``) is counted
    after it answers, as before: its answer leaves out the call that asks."""
    view = (request.parser_context or {}).get("view")
    if not is_api_path(request._request) or getattr(view, "reports_api_calls", False):
        return None
    return _api_calls_counter(key.account_id)


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
