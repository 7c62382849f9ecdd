"""The usage counter's increment, written as SQL, does what the ORM's UPDATE did.

``billing.usage._usage_increment`` replaced ``UsageDaily.objects.filter(account, date,
event_type).update(count=F("count") + count)``. Over generated counters (accounts, days,
event types, rows present or missing) and increments, the same sequence run through each
answers the same (whether a row was there) and leaves the same rows.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.models import UsageDaily, UsageEventType
from billing.usage import _usage_increment, usage_record
from tests.conftest import Tenant

pytestmark = pytest.mark.django_db

_DAY = date(2026, 3, 1)
_counter = st.tuples(
    st.integers(min_value=0, max_value=1),  # which account
    st.integers(min_value=0, max_value=2),  # which day
    st.sampled_from(UsageEventType.values),
)


def _orm_increment(*, account_id: str, day: date, event_type: str, count: int) -> bool:
    """The increment as the ORM sent it before it was written out."""
    rows = UsageDaily.objects.filter(account_id=account_id, date=day, event_type=event_type)
    return bool(rows.update(count=F("count") + count))


def _run(increment: Any, accounts: list[str], rows: Any, steps: Any) -> Any:
    with transaction.atomic():
        UsageDaily.objects.filter(account_id__in=accounts).delete()
        for (account, day, event_type), count in rows:
            UsageDaily.objects.create(
                account_id=accounts[account],
                date=_DAY + timedelta(days=day),
                event_type=event_type,
                count=count,
            )
        answers = [
            increment(
                account_id=accounts[account],
                day=_DAY + timedelta(days=day),
                event_type=event_type,
                count=count,
            )
            for (account, day, event_type), count in steps
        ]
        table = sorted(UsageDaily.objects.values_list("account_id", "date", "event_type", "count"))
        transaction.set_rollback(True)
    return answers, table


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.tuples(_counter, st.integers(min_value=0, max_value=10**12)),
        unique_by=lambda row: row[0],
        max_size=6,
    ),
    steps=st.lists(st.tuples(_counter, st.integers(min_value=1, max_value=10**6)), max_size=8),
)
def test_the_increment_is_the_orms(owner: Tenant, other: Tenant, rows: Any, steps: Any) -> None:
    accounts = [owner.account.pk, other.account.pk]
    assert _run(_usage_increment, accounts, rows, steps) == _run(
        _orm_increment, accounts, rows, steps
    )


def test_recording_on_an_existing_row_is_one_statement(owner: Tenant) -> None:
    usage_record(account=owner.account, event_type=UsageEventType.EMAILS_RECEIVED)
    with CaptureQueriesContext(connection) as captured:
        usage_record(account=owner.account, event_type=UsageEventType.EMAILS_RECEIVED, count=2)
    assert len(captured) == 1
    assert UsageDaily.objects.get(account=owner.account).count == 3
