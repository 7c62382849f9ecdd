"""The table in oversight/policy.py, proved per mode and per path: API send, reply,
scheduled send (both gate timings), inbound from every source, console decisions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from accounts.actors import Actor
from accounts.models import AuditEntry
from mailboxes.models import Direction, Email, EmailStatus
from mailboxes.services.inbound.receive import inbound_receive
from mailboxes.tasks import send_due_scheduled
from mailboxes.versions import email_version_read
from oversight import policy
from oversight.services import email_decide
from tests.conftest import Tenant, assert_error
from tests.oversight.conftest import TOKEN_IN_LINK, mime

UPGRADE_PATH = ["gated_all", "gated_send", "monitored", "autonomous"]
GATED = ("gated_all", "gated_send")


def _set_mode(tenant: Tenant, mode: str) -> None:
    tenant.mailbox.oversight_mode = mode
    tenant.mailbox.save()


def _notices() -> list[Any]:
    return [m for m in mail.outbox if TOKEN_IN_LINK.search(m.body)]


def _copies_to(address: str) -> list[Any]:
    return [m for m in mail.outbox if address in m.bcc]


@pytest.fixture
def post(api, django_capture_on_commit_callbacks):
    """POST as the agent (send key) and run what was enqueued, as the embedded mode does."""
    agent = api("send", "read")

    def run(url: str, data: dict[str, Any]) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return agent.post(url, data, format="json")

    return run


def _check_outbound(tenant: Tenant, response: Any, mode: str) -> None:
    if mode == "read_only":
        assert_error(response, "mailbox_read_only", upgrade_path=UPGRADE_PATH)
        assert not Email.objects.filter(direction=Direction.OUTBOUND).exists()
        return
    assert response.status_code == 202, response.content
    email = Email.objects.get(pk=response.json()["id"])
    oversight_email = tenant.account.oversight_email
    if mode in GATED:
        assert email.status == EmailStatus.PENDING_SEND_APPROVAL
        assert len(_notices()) == 1
        assert _copies_to(oversight_email) == []
    else:
        assert email.status == EmailStatus.SENT
        assert _notices() == []
        expected_copies = 1 if mode == "monitored" else 0
        assert len(_copies_to(oversight_email)) == expected_copies


@pytest.mark.parametrize("mode", policy.LADDER)
def test_api_send(owner: Tenant, post, mode: str) -> None:
    _set_mode(owner, mode)
    response = post(
        f"/v1/mailboxes/{owner.mailbox.pk}/send",
        {"to": ["client@example.org"], "subject": "Hi", "markdown": "Hello"},
    )
    _check_outbound(owner, response, mode)


@pytest.mark.parametrize("mode", policy.LADDER)
def test_reply(owner: Tenant, post, mode: str, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        [original] = inbound_receive(
            raw=mime(to=owner.mailbox.address), recipients=[owner.mailbox.address], source="smtp"
        )
    mail.outbox.clear()
    _set_mode(owner, mode)
    response = post(
        f"/v1/mailboxes/{owner.mailbox.pk}/reply/{original.pk}", {"markdown": "Thanks!"}
    )
    _check_outbound(owner, response, mode)


@pytest.mark.parametrize("source", ["postmark", "smtp", "local"])
@pytest.mark.parametrize("mode", policy.LADDER)
def test_inbound(owner: Tenant, mode: str, source: str, django_capture_on_commit_callbacks) -> None:
    _set_mode(owner, mode)
    with django_capture_on_commit_callbacks(execute=True):
        [email] = inbound_receive(
            raw=mime(to=owner.mailbox.address), recipients=[owner.mailbox.address], source=source
        )
    if mode == "gated_all":
        assert email.status == EmailStatus.PENDING_INBOUND_APPROVAL
        assert len(_notices()) == 1
        assert not policy.agent_can_read_content(email)
    else:
        assert email.status == EmailStatus.UNREAD
        assert _notices() == []
        assert policy.agent_can_read_content(email)


def _due(email: Email, django_capture_on_commit_callbacks) -> None:
    """Stand in for the clock reaching send_at by moving send_at back. What the operator
    approved was this email at its send time, so its approved version moves with it."""
    Email.objects.filter(pk=email.pk).update(send_at=timezone.now() - timedelta(seconds=1))
    if email.approved_version:
        moved = Email.objects.select_related("mailbox").get(pk=email.pk)
        Email.objects.filter(pk=email.pk).update(approved_version=email_version_read(email=moved))
    with django_capture_on_commit_callbacks(execute=True):
        send_due_scheduled()
    email.refresh_from_db()


def _schedule(owner: Tenant, post, gate_timing: str) -> Email:
    send_at = (timezone.now() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    response = post(
        f"/v1/mailboxes/{owner.mailbox.pk}/send",
        {
            "to": ["client@example.org"],
            "subject": "Later",
            "markdown": "Scheduled",
            "send_at": send_at,
            "gate_timing": gate_timing,
        },
    )
    assert response.status_code == 202, response.content
    return Email.objects.get(pk=response.json()["id"])


def test_scheduled_gate_first_is_approved_then_waits_for_send_at(
    owner: Tenant, post, django_capture_on_commit_callbacks
) -> None:
    _set_mode(owner, "gated_send")
    email = _schedule(owner, post, "gate_first")
    assert email.status == EmailStatus.PENDING_SEND_APPROVAL
    with django_capture_on_commit_callbacks(execute=True):
        decision = email_decide(
            actor=Actor.for_operator(owner.operator), email_id=email.pk, action="approve"
        )
    assert decision.status == "approved"
    email.refresh_from_db()
    assert email.status == EmailStatus.SCHEDULED
    assert email.sent_at is None
    _due(email, django_capture_on_commit_callbacks)
    assert email.status == EmailStatus.SENT  # not held a second time
    assert len(_notices()) == 1


def test_scheduled_schedule_first_waits_then_asks(
    owner: Tenant, post, django_capture_on_commit_callbacks
) -> None:
    _set_mode(owner, "gated_send")
    email = _schedule(owner, post, "schedule_first")
    assert email.status == EmailStatus.SCHEDULED
    assert _notices() == []
    _due(email, django_capture_on_commit_callbacks)
    assert email.status == EmailStatus.PENDING_SEND_APPROVAL
    assert len(_notices()) == 1
    with django_capture_on_commit_callbacks(execute=True):
        decision = email_decide(
            actor=Actor.for_operator(owner.operator), email_id=email.pk, action="approve"
        )
    assert decision.status == "approved_and_sent"
    email.refresh_from_db()
    assert email.status == EmailStatus.SENT


@pytest.mark.parametrize("gate_timing", ["gate_first", "schedule_first"])
def test_scheduled_in_autonomous_mode_is_never_held(
    owner: Tenant, post, gate_timing: str, django_capture_on_commit_callbacks
) -> None:
    _set_mode(owner, "autonomous")
    email = _schedule(owner, post, gate_timing)
    assert email.status == EmailStatus.SCHEDULED
    _due(email, django_capture_on_commit_callbacks)
    assert email.status == EmailStatus.SENT
    assert _notices() == []


def test_console_decision_is_audited_as_the_operator(
    owner: Tenant, post, django_capture_on_commit_callbacks
) -> None:
    _set_mode(owner, "gated_send")
    response = post(
        f"/v1/mailboxes/{owner.mailbox.pk}/send",
        {"to": ["client@example.org"], "subject": "Hi", "markdown": "Hello"},
    )
    email_id = response.json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        decision = email_decide(
            actor=Actor.for_operator(owner.operator),
            email_id=email_id,
            action="reject",
            reason="not now",
        )
    assert decision.status == "rejected"
    entry = AuditEntry.objects.get(action="email.rejected")
    assert entry.actor_kind == "operator"
    assert entry.actor_label == f"operator:{owner.operator.email}"
    assert Email.objects.get(pk=email_id).approved_by == f"operator:{owner.operator.email}"
