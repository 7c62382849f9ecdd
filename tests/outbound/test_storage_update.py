"""The stored-bytes counter's compiled UPDATE does what the ORM's UPDATE does.

``mailboxes.quotas._storage_update`` runs ``StorageUsage.objects.filter(account_id=...,
[used_bytes__lte=limit - delta]).update(used_bytes=F("used_bytes") + delta)``, the plain
increment (bytes stored or freed) and the conditional claim (the bytes fit the plan),
through a statement compiled once per process, with the change and the bound as its
parameters. Over generated counters and changes, the same sequence run through each
answers the same (whether the row took the change) and leaves the same rows.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction
from django.db.models import F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailboxes.models import StorageUsage
from mailboxes.quotas import _storage_update
from tests.conftest import Tenant

pytestmark = pytest.mark.django_db


def _orm_update(account_id: str, delta: int, *, limit: int | None) -> bool:
    """The UPDATE as the ORM builds and sends it."""
    rows = StorageUsage.objects.filter(account_id=account_id)
    if limit is not None:
        rows = rows.filter(used_bytes__lte=limit - delta)
    return bool(rows.update(used_bytes=F("used_bytes") + delta))


def _run(update: Any, accounts: list[str], rows: Any, steps: Any) -> Any:
    with transaction.atomic():
        StorageUsage.objects.filter(account_id__in=accounts).delete()
        for account, used in rows:
            StorageUsage.objects.create(account_id=accounts[account], used_bytes=used)
        answers = []
        for account, delta, slack in steps:
            # A limit around where the bytes just fit (slack 0) or just do not (-1).
            used = StorageUsage.objects.filter(account_id=accounts[account]).first()
            limit = None if slack is None else (used.used_bytes if used else 0) + delta + slack
            answers.append(update(accounts[account], delta, limit=limit))
        table = sorted(StorageUsage.objects.values_list("account_id", "used_bytes"))
        transaction.set_rollback(True)
    return answers, table


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.tuples(st.integers(min_value=0, max_value=1), st.integers(0, 10**6)),
        unique_by=lambda row: row[0],
        max_size=2,
    ),
    steps=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=1),  # which account
            st.integers(min_value=-1000, max_value=10**6),  # bytes stored (or freed)
            st.one_of(st.none(), st.integers(min_value=-2, max_value=2)),  # the limit's slack
        ),
        max_size=8,
    ),
)
def test_the_update_is_the_orms(owner: Tenant, other: Tenant, rows: Any, steps: Any) -> None:
    accounts = [owner.account.pk, other.account.pk]
    assert _run(_storage_update, accounts, rows, steps) == _run(_orm_update, accounts, rows, steps)
