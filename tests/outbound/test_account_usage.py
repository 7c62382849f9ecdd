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

from accounts.models import Account, OversightEmailChange
from accounts.plans import Plan
from accounts.selectors import account_info, oversight_email_pending
from billing.models import Subscription, SubscriptionStatus
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


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    plan=st.sampled_from(Plan.values),
    subscription=st.none()
    | st.tuples(
        st.sampled_from(SubscriptionStatus.values),
        st.none() | st.integers(min_value=-90, max_value=0),  # period start, days from now
    ),
    sent_days_ago=st.lists(st.integers(min_value=0, max_value=90), max_size=5),
)
def test_a_paid_plan_counts_from_the_subscription_as_before(
    owner: Tenant,
    plan: str,
    subscription: tuple[str, int | None] | None,
    sent_days_ago: list[int],
) -> None:
    """The subscription the period counts from is read with a precompiled statement and
    cached on the account as its accessor caches it: the same period, the same count."""
    with transaction.atomic():
        now = timezone.now()
        Account.objects.filter(pk=owner.account.pk).update(
            plan=plan, created_at=now - timedelta(days=100)
        )
        if subscription is not None:
            status, start_days = subscription
            Subscription.objects.create(
                account=owner.account,
                plan=plan,
                status=status,
                current_period_start=None
                if start_days is None
                else now + timedelta(days=start_days, hours=-1),
            )
        for days in sent_days_ago:
            make_email(
                owner.mailbox,
                direction=Direction.OUTBOUND,
                status=EmailStatus.SENT,
                received_at=now - timedelta(days=days, minutes=30),
            )
        primed, lazy = (Account.objects.get(pk=owner.account.pk) for _ in range(2))
        usage = account_usage(account=primed, now=now)
        assert usage.emails_sent_this_period == emails_sent_this_period(account=lazy)
        assert primed.period_start == lazy.period_start
        if plan != Plan.STARTER:
            assert _related(primed) == _related(lazy)
        transaction.set_rollback(True)


def _related(account: Account) -> Any:
    try:
        subscription = account.subscription  # type: ignore[attr-defined]
    except Subscription.DoesNotExist:
        return None
    return (
        {k: v for k, v in subscription.__dict__.items() if k != "_state"},
        subscription._state.adding,
        subscription._state.db,
        subscription.account is account,
    )


def test_a_paid_account_info_reads_its_subscription_and_usage_in_two_queries(
    owner: Tenant,
) -> None:
    Account.objects.filter(pk=owner.account.pk).update(plan=Plan.PRO)
    Subscription.objects.create(account=owner.account, status=SubscriptionStatus.ACTIVE)
    account_info(account=Account.objects.get(pk=owner.account.pk))  # advances period_start
    account = Account.objects.get(pk=owner.account.pk)
    with CaptureQueriesContext(connection) as captured:
        account_info(account=account)
    assert len(captured) == 2
