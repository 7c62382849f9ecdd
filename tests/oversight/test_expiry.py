"""Approvals that do not sit forever: the account's approval_expiry_hours, the reminder at
half time and the expiry, driven by the periodic task with a moved clock."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.test import TestCase
from django.utils import timezone
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from accounts.models import AuditEntry
from mailboxes import deadline_tasks as tasks
from mailboxes.models import Direction, Email, EmailStatus, WebhookDelivery, WebhookEvent
from oversight.models import OperatorNotification
from oversight.services import email_decide
from tests.conftest import Tenant, assert_error, start_and_join
from tests.console.conftest import signed_in
from tests.oversight.conftest import held

Kind = OperatorNotification.Kind


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``clock(hours=37)`` moves every ``timezone.now()`` that far ahead of now."""
    real = timezone.now

    def move(**delta: float) -> datetime:
        moved = real() + timedelta(**delta)
        monkeypatch.setattr(timezone, "now", lambda: moved)
        return moved

    return move


def _run() -> dict[str, int]:
    with TestCase.captureOnCommitCallbacks(execute=True):
        return tasks.approval_deadlines()


def _reminders() -> list[Any]:
    return [m for m in mail.outbox if m.subject.startswith("[MultiMail] Reminder:")]


def test_the_setting_is_on_the_account_and_the_operator_sets_it(owner: Tenant, api) -> None:
    assert api("read").get("/v1/account").json()["approval_expiry_hours"] == 72
    response = api("admin").patch("/v1/account", {"approval_expiry_hours": 5}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["approval_expiry_hours"] == 5
    console = signed_in(owner)
    saved = console.post("/console/approval-expiry", {"approval_expiry_hours": "0"}, follow=True)
    assert "Held emails never expire." in saved.content.decode()
    owner.account.refresh_from_db()
    assert owner.account.approval_expiry_hours == 0


def test_a_key_needs_the_operator_to_change_it(owner: Tenant, api) -> None:
    owner.account.require_operator_approval = True
    owner.account.save()
    response = api("admin").patch("/v1/account", {"approval_expiry_hours": 0}, format="json")
    assert response.status_code == 202
    owner.account.refresh_from_db()
    assert owner.account.approval_expiry_hours == 72


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@example(value="0")  # digits as text are not a JSON number
@example(value=True)
@given(
    value=st.one_of(
        st.integers(),
        st.text(max_size=10),
        st.none(),
        st.floats(allow_nan=False, allow_infinity=False),
    )
)
def test_any_value_is_stored_or_refused_with_a_catalog_error(owner: Tenant, api, value) -> None:
    response = api("admin").patch("/v1/account", {"approval_expiry_hours": value}, format="json")
    owner.account.refresh_from_db()
    if response.status_code == 200:
        assert isinstance(value, int | float)
        assert 0 <= value <= 8760
        assert owner.account.approval_expiry_hours == int(value)
    else:
        code = response.json()["error"]["code"]
        assert code in ("invalid_parameter", "missing_parameter"), response.content
        assert_error(response, code, param="approval_expiry_hours")


def test_one_reminder_at_half_time_then_the_email_expires(owner: Tenant, clock) -> None:
    owner.mailbox.oversight_webhook_url = "https://hooks.example/o"
    owner.mailbox.save()
    email = held(owner.mailbox, subject="Waiting too long")
    inbound = held(owner.mailbox, direction=Direction.INBOUND, subject="Inbound too")
    mail.outbox.clear()

    clock(hours=35)
    assert _run() == {"expired": 0, "reminded": 0}
    clock(hours=37)
    assert _run() == {"expired": 0, "reminded": 2}
    [reminder, _] = _reminders()
    assert reminder.to == [owner.account.oversight_email]
    assert "expired after 72 hours" in reminder.body
    # Recorded: the next runs remind nobody again.
    clock(hours=40)
    assert _run() == {"expired": 0, "reminded": 0}
    assert len(_reminders()) == 2
    assert OperatorNotification.objects.filter(kind=Kind.EXPIRY_REMINDER).count() == 2

    clock(hours=72, minutes=1)
    assert _run() == {"expired": 2, "reminded": 0}
    email.refresh_from_db()
    assert email.status == EmailStatus.REJECTED
    assert email.failure_reason == "expired after 72 hours"
    assert email.approved_by == "system:approval expiry"
    inbound.refresh_from_db()
    assert inbound.status == EmailStatus.REJECTED
    event = WebhookDelivery.objects.get(
        event_type=WebhookEvent.OVERSIGHT_REJECTED, payload__data__email_id=email.pk
    )
    assert event.payload["data"]["reason"] == "expired after 72 hours"
    assert event.payload["data"]["decided_via"] == "system"
    assert AuditEntry.objects.filter(action="email.rejected", resource_id=email.pk).exists()
    assert _run() == {"expired": 0, "reminded": 0}


def test_the_agent_sees_why(owner: Tenant, api, clock) -> None:
    email = held(owner.mailbox)
    clock(hours=73)
    _run()
    detail = api("read").get(f"/v1/mailboxes/{owner.mailbox.pk}/emails/{email.pk}").json()
    assert detail["status"] == "rejected"
    assert detail["failure_reason"] == "expired after 72 hours"


def test_zero_means_never(owner: Tenant, clock) -> None:
    owner.account.approval_expiry_hours = 0
    owner.account.save()
    email = held(owner.mailbox)
    clock(hours=10_000)
    assert _run() == {"expired": 0, "reminded": 0}
    email.refresh_from_db()
    assert email.status == EmailStatus.PENDING_SEND_APPROVAL


def test_the_console_shows_age_and_time_left_oldest_first(owner: Tenant) -> None:
    older = held(owner.mailbox, subject="Older one")
    newer = held(owner.mailbox, subject="Newer one")
    Email.objects.filter(pk=older.pk).update(status_changed_at=timezone.now() - timedelta(hours=30))
    page = signed_in(owner).get("/console/").content.decode()
    assert page.index("Older one") < page.index("Newer one")
    assert "for 1\xa0day, 6\xa0hours" in page
    # 72 - 30 hours left, less the seconds the test took.
    assert "expires in 1\xa0day, 17\xa0hours" in page
    newest = signed_in(owner).get("/console/?order=newest").content.decode()
    assert newest.index(newer.subject) < newest.index(older.subject)


@pytest.mark.django_db(transaction=True)
def test_an_expiry_racing_a_decision_has_one_winner(owner: Tenant, clock) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    from accounts.actors import Actor

    emails = [held(owner.mailbox, subject=f"Race {n}") for n in range(6)]
    clock(hours=73)
    outcomes: list[str] = []

    def decide(email_id: str) -> None:
        try:
            email_decide(
                actor=Actor.for_operator(owner.operator), email_id=email_id, action="reject"
            )
            outcomes.append("operator")
        except Exception as error:  # the loser's catalog error
            outcomes.append(getattr(error, "code", repr(error)))
        finally:
            connection.close()

    def expire() -> None:
        try:
            tasks.approval_deadlines()
        finally:
            connection.close()

    threads = [threading.Thread(target=decide, args=(e.pk,)) for e in emails]
    threads.append(threading.Thread(target=expire))
    start_and_join(threads, timeout=60)
    for email in emails:
        email.refresh_from_db()
        assert email.status == EmailStatus.REJECTED
    rejected = WebhookDelivery.objects.filter(event_type=WebhookEvent.OVERSIGHT_REJECTED)
    # Exactly one decision per email: the operator's or the expiry's, never both.
    audit = AuditEntry.objects.filter(action="email.rejected")
    assert audit.count() == len(emails)
    assert rejected.count() == 0 or rejected.count() == len(emails)
    assert set(outcomes) <= {"operator", "already_decided"}
