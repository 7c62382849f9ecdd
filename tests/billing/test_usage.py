"""GET /v1/usage, API-call counting, quota periods and the plan table."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Account
from accounts.plans import DOMAIN_PLANS, PAID_PLANS, PLANS, limits_for
from billing.models import UsageDaily, UsageEventType
from billing.periods import current_period, monthly_window
from billing.selectors import billing_overview
from billing.usage import api_call_count, api_calls_flush, usage_record
from mailboxes.quotas import WARMUP_DAILY_CAPS
from multimail.epoch import epoch_ms
from tests.conftest import assert_error, client_for, key_for, on_annual_pro

pytestmark = pytest.mark.django_db


def _day(account: Account, day: date, event_type: str, count: int) -> None:
    UsageDaily.objects.create(account=account, date=day, event_type=event_type, count=count)


def test_summary_covers_the_current_period(owner: Any, other: Any) -> None:
    usage_record(account=owner.account, event_type=UsageEventType.EMAILS_SENT, count=3)
    usage_record(account=owner.account, event_type=UsageEventType.EMAILS_RECEIVED)
    usage_record(account=owner.account, event_type=UsageEventType.OVERSIGHT_ACTIONS, count=2)
    usage_record(account=other.account, event_type=UsageEventType.EMAILS_SENT, count=50)
    start, end = current_period(owner.account)
    _, raw = key_for(owner.account, "read")
    response = client_for(raw).get("/v1/usage")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "from": epoch_ms(start),
        "to": epoch_ms(end),
        "emails_sent": 3,
        "emails_received": 1,
        "api_calls": 0,
        "oversight_actions": 2,
    }


def test_daily_breakdown_and_explicit_window(owner: Any) -> None:
    today = timezone.now().date()
    _day(owner.account, today - timedelta(days=40), "emails_sent", 7)
    _day(owner.account, today - timedelta(days=1), "emails_sent", 2)
    _day(owner.account, today, "emails_received", 4)
    start_ms = epoch_ms(datetime.combine(today - timedelta(days=2), datetime.min.time(), UTC))
    end_ms = epoch_ms(timezone.now())
    client = client_for(key_for(owner.account, "read")[1])
    daily = client.get("/v1/usage", {"from": start_ms, "to": end_ms, "breakdown": "daily"})
    assert daily.status_code == 200, daily.content
    assert daily.json() == {
        "from": start_ms,
        "to": end_ms,
        "breakdown": "daily",
        "data": [
            {
                "date": (today - timedelta(days=1)).isoformat(),
                "event_type": "emails_sent",
                "count": 2,
            },
            {"date": today.isoformat(), "event_type": "emails_received", "count": 4},
        ],
    }
    # The MCP's spelling.
    assert client.get("/v1/usage", {"period": "daily"}).json()["breakdown"] == "daily"
    assert "breakdown" not in client.get("/v1/usage", {"period": "summary"}).json()


def test_previous_period(owner: Any) -> None:
    Account.objects.filter(pk=owner.account.pk).update(
        created_at=timezone.now() - timedelta(days=75)
    )
    owner.account.refresh_from_db()
    start, _ = current_period(owner.account)
    _day(owner.account, (start - timedelta(days=3)).date(), "emails_sent", 9)
    client = client_for(key_for(owner.account, "read")[1])
    previous = client.get("/v1/usage", {"period": "previous"}).json()
    assert previous["emails_sent"] == 9
    assert previous["to"] == epoch_ms(start)
    assert client.get("/v1/usage", {"period": "current"}).json()["emails_sent"] == 0


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"from": "yesterday"}, "from"),
        ({"to": "-5"}, "to"),
        ({"to": "31847952537258319872"}, "to"),
        ({"from": "2000", "to": "1000"}, "from"),
        ({"breakdown": "weekly"}, "breakdown"),
        ({"period": "forever"}, "period"),
    ],
)
def test_bad_usage_parameters(owner: Any, params: dict[str, str], param: str) -> None:
    response = client_for(key_for(owner.account, "read")[1]).get("/v1/usage", params)
    assert_error(response, "invalid_parameter", param=param)


def test_usage_needs_a_key_with_read(owner: Any) -> None:
    assert_error(APIClient().get("/v1/usage"), "authentication_required")
    sender = client_for(key_for(owner.account, "send")[1])
    assert_error(sender.get("/v1/usage"), "insufficient_permissions", required_scope="read")


def test_api_calls_are_counted(owner: Any) -> None:
    client = client_for(key_for(owner.account, "read")[1])
    for _ in range(4):
        client.get("/v1/usage")
    assert client.get("/v1/usage").json()["api_calls"] == 4
    # Requests without a valid key are not API calls of the account.
    APIClient().get("/v1/usage")
    assert client.get("/v1/usage").json()["api_calls"] == 5


def test_api_call_counter_writes_at_most_once_a_minute(owner: Any) -> None:
    for _ in range(3):
        api_call_count(account=owner.account)
    # The first call opened the minute (a lone call is not worth a write); the rest wait.
    assert not UsageDaily.objects.filter(account=owner.account).exists()
    cache.delete(f"usage:api_calls:flushed:{owner.account.pk}")  # a minute later
    api_call_count(account=owner.account)
    assert UsageDaily.objects.get(account=owner.account, event_type="api_calls").count == 4
    api_call_count(account=owner.account)
    api_call_count(account=owner.account)
    assert UsageDaily.objects.get(account=owner.account, event_type="api_calls").count == 4
    api_calls_flush(account=owner.account)
    assert UsageDaily.objects.get(account=owner.account, event_type="api_calls").count == 6
    api_calls_flush(account=owner.account)  # nothing pending: nothing added
    assert UsageDaily.objects.get(account=owner.account, event_type="api_calls").count == 6


def test_starter_period_advances_lazily_by_whole_months(owner: Any) -> None:
    created = datetime(2026, 1, 31, 9, 30, tzinfo=UTC)
    Account.objects.filter(pk=owner.account.pk).update(created_at=created, period_start=created)
    owner.account.refresh_from_db()
    now = datetime(2026, 3, 15, tzinfo=UTC)
    start, end = current_period(owner.account, now=now)
    assert start == datetime(2026, 2, 28, 9, 30, tzinfo=UTC)
    assert end == datetime(2026, 3, 31, 9, 30, tzinfo=UTC)  # from the anchor: no drift
    owner.account.refresh_from_db()
    assert owner.account.period_start == start
    assert monthly_window(created, datetime(2026, 1, 31, 9, 29, tzinfo=UTC))[0] == created


def test_paid_period_follows_the_subscription(owner: Any) -> None:
    period_start = timezone.now() - timedelta(days=3)
    on_annual_pro(owner.account, period_start=period_start)
    account = Account.objects.get(pk=owner.account.pk)
    start, end = current_period(account)
    assert start == period_start
    # Annual plans still reset the quota monthly.
    assert (end - start).days in (28, 29, 30, 31)


def test_plan_table_has_what_limits_need() -> None:
    assert [limits_for(p).max_mailboxes for p in ("starter", "builder", "pro", "scale")] == [
        2,
        5,
        25,
        100,
    ]
    assert limits_for("starter").monthly_email_quota == 200
    assert set(DOMAIN_PLANS) == {"pro", "scale"}
    assert set(PAID_PLANS) == {"builder", "pro", "scale"}
    assert [PLANS[p].monthly_price_usd for p in PAID_PLANS] == [9, 29, 99]
    assert len(WARMUP_DAILY_CAPS) == 7


def test_billing_overview_for_the_console(owner: Any) -> None:
    overview = billing_overview(account=owner.account)
    assert overview["plan"] == "starter"
    assert overview["limits"]["max_mailboxes"] == 2
    assert overview["status"] == "none"
    assert overview["has_customer"] is False
    assert [p["plan"] for p in overview["plans"]] == ["starter", "builder", "pro", "scale"]
