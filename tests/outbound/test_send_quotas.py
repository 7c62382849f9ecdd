"""The monthly quota and warm-up caps as counters: claimed by a send, given back by a
refusal, a rollback, a rejection or a cancel, recounted once when a period starts, and
always equal to the count of the rows they stand for."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.apps import apps
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from accounts.actors import Actor
from accounts.models import Account
from accounts.plans import Plan, limits_for
from billing.periods import current_period
from mailboxes import lifecycle, quotas
from mailboxes.models import (
    AccountSendCount,
    Email,
    EmailStatus,
    MailboxSendCount,
    StorageUsage,
    Suppression,
)
from mailboxes.quotas import counted_sends
from multimail.errors import ApiError
from multimail.ids import new_id
from tests.conftest import Tenant, assert_error
from tests.outbound.conftest import body, sent_emails

pytestmark = pytest.mark.django_db

_backfill = __import__("mailboxes.migrations.0014_h45_send_counts", fromlist=["backfill"]).backfill


def _account_used(owner: Tenant) -> int:
    return AccountSendCount.objects.get(account=owner.account).used


def _mailbox_used(owner: Tenant) -> int:
    return MailboxSendCount.objects.get(mailbox=owner.mailbox).used


def _rows(owner: Tenant, *, since: Any) -> int:
    return counted_sends(account=owner.account, received_at__gte=since).count()


@pytest.fixture
def send(sender: APIClient, owner: Tenant) -> Callable[..., Any]:
    """POST a send and leave it queued (pending_scan): nothing moves it but the test."""

    def run(**overrides: Any) -> Any:
        url = f"/v1/mailboxes/{owner.mailbox.pk}/send"
        return sender.post(url, body(**overrides), format="json")

    return run


@pytest.fixture
def tight(monkeypatch: pytest.MonkeyPatch, owner: Tenant) -> int:
    """A monthly quota of 3 on a warmed-up mailbox."""
    quota = dataclasses.replace(limits_for(Plan.STARTER), monthly_email_quota=3)
    monkeypatch.setattr("mailboxes.quotas.limits_for", lambda plan: quota)
    owner.mailbox.created_at = timezone.now() - timedelta(days=30)
    owner.mailbox.save()
    return 3


def test_sends_claim_the_counter_up_to_the_quota(
    send: Callable[..., Any], owner: Tenant, tight: int
) -> None:
    for index in range(tight):
        assert send(subject=f"s{index}").status_code == 202
    assert _account_used(owner) == tight
    assert_error(send(subject="over"), "monthly_quota_exceeded", quota=tight, used=tight)
    assert _account_used(owner) == tight  # the refused send took nothing


def test_a_claim_is_one_statement(send: Callable[..., Any], owner: Tenant, tight: int) -> None:
    """Once the counter exists, claiming costs one UPDATE, whatever the month's sends."""
    assert send(subject="first").status_code == 202
    with CaptureQueriesContext(connection) as queries:
        assert send(subject="second").status_code == 202
    touching = [q["sql"] for q in queries if "mailboxes_accountsendcount" in q["sql"]]
    assert len(touching) == 1
    # The counter's UPDATE, with the storage counter's in the same statement.
    assert touching[0].startswith('WITH counted AS (UPDATE "mailboxes_accountsendcount"')
    assert 'UPDATE "mailboxes_storageusage"' in touching[0]
    assert not any("COUNT(" in q["sql"] and "mailboxes_email" in q["sql"] for q in queries)


def test_cancel_and_reject_give_the_slot_back(
    send: Callable[..., Any], owner: Tenant, tight: int
) -> None:
    ids = [send(subject=f"s{index}").json()["id"] for index in range(tight)]
    assert lifecycle.email_cancel(mailbox=owner.mailbox, email_id=ids[0])
    assert _account_used(owner) == tight - 1
    held = Email.objects.get(pk=ids[1])
    Email.objects.filter(pk=held.pk).update(status=EmailStatus.PENDING_SEND_APPROVAL)
    held.status = EmailStatus.PENDING_SEND_APPROVAL
    assert lifecycle.email_record_decision(
        email=held,
        to=EmailStatus.REJECTED,
        actor=Actor.system(owner.account, label="test"),
        version="v1",
    )
    assert _account_used(owner) == tight - 2
    assert send(subject="again 1").status_code == 202
    assert send(subject="again 2").status_code == 202
    assert_error(send(subject="over"), "monthly_quota_exceeded", used=tight)


def test_mail_of_an_earlier_period_gives_nothing_back(
    send: Callable[..., Any], owner: Tenant, tight: int
) -> None:
    """Only mail the counter counted gives its slot back: a cancel of last month's email
    does not lower this month's figure."""
    email_id = send(subject="old").json()["id"]
    Email.objects.filter(pk=email_id).update(received_at=timezone.now() - timedelta(days=40))
    AccountSendCount.objects.filter(account=owner.account).update(used=2)
    assert lifecycle.email_cancel(mailbox=owner.mailbox, email_id=email_id)
    assert _account_used(owner) == 2


def test_deleting_a_mailbox_gives_its_queued_sends_back(
    send: Callable[..., Any], owner: Tenant, tight: int
) -> None:
    for index in range(2):
        send(subject=f"s{index}")
    Email.objects.filter(mailbox=owner.mailbox).update(status=EmailStatus.SCHEDULED)
    assert lifecycle.mailbox_cancel_queued(mailbox=owner.mailbox) == 2
    assert _account_used(owner) == 0


def test_a_refusal_later_in_the_transaction_releases_the_claim(
    send: Callable[..., Any], owner: Tenant, tight: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The storage limit is checked after the quota's slot is taken: its refusal rolls the
    slot back with everything else."""
    assert send(subject="first").status_code == 202
    tiny = dataclasses.replace(limits_for(Plan.STARTER), monthly_email_quota=3, max_storage_bytes=1)
    monkeypatch.setattr("mailboxes.quotas.limits_for", lambda plan: tiny)
    assert_error(send(subject="too big"), "storage_quota_exceeded")
    assert _account_used(owner) == 1


def test_validation_failures_claim_nothing(
    send: Callable[..., Any], owner: Tenant, tight: int
) -> None:
    Suppression.objects.create(account=owner.account, email_address="gone@example.org")
    assert_error(send(to=["gone@example.org"]), "recipient_suppressed")
    assert_error(send(to=["not an address"]), "invalid_parameter", param="to.0")
    assert not AccountSendCount.objects.filter(account=owner.account, used__gt=0).exists()


def test_a_new_period_recounts_once(send: Callable[..., Any], owner: Tenant, tight: int) -> None:
    """A counter of a past period (or a missing one) is recounted from the rows by the
    first claim of the new period; the mail of the old period is not in it."""
    start, _ = current_period(owner.account)
    sent_emails(owner, 5, received_at=start - timedelta(minutes=1))
    sent_emails(owner, 1, received_at=start + timedelta(seconds=1))
    AccountSendCount.objects.update_or_create(
        account=owner.account, defaults={"since": start - timedelta(days=31), "used": 3}
    )
    assert send(subject="new month").status_code == 202
    counter = AccountSendCount.objects.get(account=owner.account)
    assert (counter.since, counter.used) == (start, 2)
    assert send(subject="third").status_code == 202
    assert_error(send(subject="over"), "monthly_quota_exceeded", used=3)


def test_warmup_counter_starts_again_each_day(send: Callable[..., Any], owner: Tenant) -> None:
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    MailboxSendCount.objects.create(
        mailbox=owner.mailbox, since=midnight - timedelta(days=1), used=20
    )
    assert send().status_code == 202  # yesterday's 20 do not count today
    counter = MailboxSendCount.objects.get(mailbox=owner.mailbox)
    assert (counter.since, counter.used) == (midnight, 1)
    MailboxSendCount.objects.filter(mailbox=owner.mailbox).update(used=20)
    assert_error(send(subject="over"), "warmup_limit_exceeded", daily_sent=20, daily_limit=20)
    assert _mailbox_used(owner) == 20


def test_backfill_counts_the_sent_mail(owner: Tenant) -> None:
    start, _ = current_period(owner.account)
    sent_emails(owner, 4, received_at=start + timedelta(seconds=1))
    sent_emails(owner, 2, received_at=start - timedelta(seconds=1))
    sent_emails(owner, 3, status=EmailStatus.REJECTED, received_at=start + timedelta(seconds=1))
    AccountSendCount.objects.all().delete()
    MailboxSendCount.objects.all().delete()
    _backfill(apps, None)
    counter = AccountSendCount.objects.get(account=owner.account)
    assert (counter.since, counter.used) == (start, 4)
    # The mailbox is on its first day of warm-up: its counter starts at today's midnight.
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    daily = MailboxSendCount.objects.get(mailbox=owner.mailbox)
    assert (daily.since, daily.used) == (
        midnight,
        counted_sends(mailbox=owner.mailbox, received_at__gte=midnight).count(),
    )


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(st.sampled_from(["send", "cancel", "reject"]), min_size=1, max_size=8))
def test_the_counter_equals_the_rows(
    send: Callable[..., Any], owner: Tenant, tight: int, steps: list[str]
) -> None:
    """Whatever mix of sends, cancels and rejections, the counter is the count of the rows
    the quota used to count, and the quota refuses exactly when they reach it."""
    start, _ = current_period(owner.account)
    for step in steps:
        live = list(
            counted_sends(account=owner.account).filter(status=EmailStatus.PENDING_SCAN)[:1]
        )
        if step == "send":
            room = _rows(owner, since=start) < tight
            response = send(subject=f"step {new_id()}")
            if room:
                assert response.status_code == 202
            else:
                assert_error(response, "monthly_quota_exceeded")
        elif live and step == "cancel":
            lifecycle.email_cancel(mailbox=owner.mailbox, email_id=live[0].pk)
        elif live:
            email = live[0]
            Email.objects.filter(pk=email.pk).update(status=EmailStatus.PENDING_SEND_APPROVAL)
            email.status = EmailStatus.PENDING_SEND_APPROVAL
            lifecycle.email_record_decision(
                email=email,
                to=EmailStatus.REJECTED,
                actor=Actor.system(owner.account, label="test"),
                version="v1",
            )
        counter = AccountSendCount.objects.filter(account=owner.account).first()
        assert (counter.used if counter else 0) == _rows(owner, since=start)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    counter=st.sampled_from(["missing", "this period", "last period"]),
    used=st.integers(min_value=0, max_value=4),
    stored=st.one_of(st.none(), st.integers(min_value=0, max_value=120)),
    adding=st.integers(min_value=0, max_value=60),
)
def test_the_claims_in_one_statement_end_as_the_claims_apart(
    owner: Tenant,
    tight: int,
    monkeypatch: pytest.MonkeyPatch,
    counter: str,
    used: int,
    stored: int | None,
    adding: int,
) -> None:
    """``_claims_together`` (the counter's and the storage's UPDATE in one statement) ends
    every state where the UPDATEs made one by one end it: the same refusal or none, the
    same counters, and never a statement more."""
    limits = dataclasses.replace(quotas.limits_for(Plan.STARTER), max_storage_bytes=100)
    monkeypatch.setattr(quotas, "limits_for", lambda plan: limits)
    period = current_period(owner.account)
    account = Account.objects.get(pk=owner.account.pk)

    def claim(together: bool) -> tuple[Any, ...]:
        with transaction.atomic():
            AccountSendCount.objects.filter(account=account).delete()
            StorageUsage.objects.filter(account=account).delete()
            if counter != "missing":
                since = period[0] if counter == "this period" else period[0] - timedelta(days=31)
                AccountSendCount.objects.create(account=account, since=since, used=used)
            if stored is not None:
                StorageUsage.objects.create(account=account, used_bytes=stored)
            refused = None
            apart = mock.patch.object(quotas, "_claims_together", return_value=(None, None))
            with (
                contextlib.nullcontext() if together else apart,
                CaptureQueriesContext(connection) as queries,
            ):
                try:
                    quotas.send_limits_claim(
                        account=account, mailbox=owner.mailbox, adding_bytes=adding, period=period
                    )
                except ApiError as error:
                    refused = error.code
            outcome = (
                refused,
                list(AccountSendCount.objects.filter(account=account).values("since", "used")),
                list(StorageUsage.objects.filter(account=account).values("used_bytes")),
                len(queries),
            )
            transaction.set_rollback(True)
        return outcome

    apart, together = claim(False), claim(True)
    assert together[:3] == apart[:3]
    assert together[3] <= apart[3]
