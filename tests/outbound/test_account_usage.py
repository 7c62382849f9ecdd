"""``account_usage`` (one statement for GET /v1/account) answers what the three reads it
replaced answer: emails sent this period (counter or rows), stored bytes and the pending
oversight email, over generated counters, sends, storage rows and address changes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import OversightEmailChange
from accounts.selectors import account_info, oversight_email_pending
from billing.periods import current_period
from mailboxes.models import AccountSendCount, Direction, EmailStatus, StorageUsage
from mailboxes.quotas import account_usage, emails_sent_this_period, storage_used_bytes
from multimail.ids import new_id
from tests.conftest import Tenant
from tests.inbound.conftest import make_email

pytestmark = pytest.mark.django_db

_hours = st.integers(min_value=-72, max_value=72)  # around the period's start


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sends=st.lists(
        st.tuples(st.sampled_from(Direction.values), st.sampled_from(EmailStatus.values), _hours),
        max_size=6,
    ),
    counter=st.none() | st.tuples(st.booleans(), st.integers(min_value=0, max_value=10**6)),
    stored=st.none() | st.integers(min_value=0, max_value=10**12),
    changes=st.lists(
        st.tuples(st.sampled_from(OversightEmailChange.Status.values), _hours), max_size=3
    ),
)
def test_account_usage_is_the_three_reads(
    owner: Tenant,
    other: Tenant,
    sends: list[Any],
    counter: tuple[bool, int] | None,
    stored: int | None,
    changes: list[Any],
) -> None:
    with transaction.atomic():
        account = owner.account
        now = timezone.now()
        start = current_period(account, now=now)[0]
        for direction, status, hours in sends:
            for tenant in (owner, other):  # the other tenant's mail never counts
                make_email(
                    tenant.mailbox,
                    direction=direction,
                    status=status,
                    received_at=start + timedelta(hours=hours),
                )
        if counter is not None:
            current, used = counter
            since = start if current else start - timedelta(days=31)
            AccountSendCount.objects.create(account=account, since=since, used=used)
        if stored is not None:
            StorageUsage.objects.create(account=account, used_bytes=stored)
        for index, (status, hours) in enumerate(changes):
            OversightEmailChange.objects.create(
                account=account,
                old_email=account.oversight_email,
                new_email=f"new{index}@acme.example",
                status=status,
                confirm_token_hash=new_id(),
                undo_token_hash=new_id(),
                confirm_expires_at=now + timedelta(hours=hours),
            )
        usage = account_usage(account=account, now=now)
        assert usage.emails_sent_this_period == emails_sent_this_period(account=account)
        assert usage.storage_used_bytes == storage_used_bytes(account=account)
        # Whole hours from now: none expires between the two reads' clocks.
        assert usage.pending_oversight_email == oversight_email_pending(account=account)
        transaction.set_rollback(True)


def test_account_info_reads_its_usage_in_one_query(owner: Tenant) -> None:
    account_info(account=owner.account)
    with CaptureQueriesContext(connection) as captured:
        account_info(account=owner.account)
    assert len(captured) == 1  # the usage statement; the period needs no query on starter
