"""Recording usage: emails sent and received, API calls, oversight actions."""

from __future__ import annotations

from django.db.models import F
from django.utils import timezone

from accounts.models import Account
from billing.models import UsageDaily, UsageEventType


def usage_record(*, account: Account, event_type: UsageEventType, count: int = 1) -> None:
    """Add ``count`` to today's counter (UTC) with an atomic in-place increment."""
    today = timezone.now().date()
    updated = UsageDaily.objects.filter(account=account, date=today, event_type=event_type).update(
        count=F("count") + count
    )
    if updated:
        return
    _, created = UsageDaily.objects.get_or_create(
        account=account, date=today, event_type=event_type, defaults={"count": count}
    )
    if not created:  # another request created today's row between our update and insert
        UsageDaily.objects.filter(account=account, date=today, event_type=event_type).update(
            count=F("count") + count
        )
