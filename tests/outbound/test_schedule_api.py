"""PATCH /v1/mailboxes/{id}/emails/{email_id}/schedule."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from mailboxes.models import Email, EmailStatus
from tests.conftest import Tenant, assert_error

pytestmark = pytest.mark.django_db


def _later(**delta: int) -> str:
    return (timezone.now() + timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def scheduled(send: Callable[..., Any]) -> Email:
    response = send(send_at=_later(hours=2))
    return Email.objects.get(pk=response.json()["id"])


@pytest.fixture
def patch(
    sender: Any, owner: Tenant, django_capture_on_commit_callbacks: Any
) -> Callable[..., Any]:
    def run(email: Email, payload: dict[str, Any], mailbox_id: str | None = None) -> Any:
        url = f"/v1/mailboxes/{mailbox_id or owner.mailbox.pk}/emails/{email.pk}/schedule"
        with django_capture_on_commit_callbacks(execute=True):
            return sender.patch(url, payload, format="json")

    return run


def test_move_send_at(patch: Callable[..., Any], scheduled: Email) -> None:
    new_time = _later(hours=5)
    response = patch(scheduled, {"send_at": new_time})
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "scheduled"
    assert response.json()["send_at"].startswith(new_time[:16])
    scheduled.refresh_from_db()
    assert scheduled.send_at.strftime("%Y-%m-%dT%H:%M:%SZ") == new_time


def test_content_change_is_scanned_again(patch: Callable[..., Any], scheduled: Email) -> None:
    response = patch(scheduled, {"markdown": "**new** text", "to": ["new@example.org"]})
    assert response.status_code == 200, response.content
    scheduled.refresh_from_db()
    assert scheduled.status == EmailStatus.SCHEDULED  # scanned, and waiting again
    assert "<strong>new</strong>" in scheduled.html
    assert scheduled.to == ["new@example.org"]
    assert patch(scheduled, {"markdown": "x", "subject": "x"}).status_code == 200
    bad = patch(
        scheduled,
        {"markdown": "Your account will be suspended, verify your password: "
                     "[bank.example](https://evil.example)"},
    )  # fmt: skip
    error = assert_error(bad, "content_rejected")
    assert error["reason"].startswith("phishing pattern")
    scheduled.refresh_from_db()
    assert scheduled.status == EmailStatus.SCHEDULED
    assert scheduled.markdown == "x"  # unchanged


def test_an_approved_email_is_frozen_send_time_included(
    patch: Callable[..., Any], scheduled: Email
) -> None:
    """The operator approved it as it was, when it was to leave included."""
    Email.objects.filter(pk=scheduled.pk).update(approved_at=timezone.now())
    before = Email.objects.filter(pk=scheduled.pk).values().get()
    for change in ({"subject": "changed"}, {"send_at": _later(hours=3)}):
        error = assert_error(patch(scheduled, change), "conflict")
        assert "already approved" in error["message"]
    assert Email.objects.filter(pk=scheduled.pk).values().get() == before


def test_only_scheduled_emails(patch: Callable[..., Any], send: Callable[..., Any]) -> None:
    sent = Email.objects.get(pk=send().json()["id"])
    assert_error(patch(sent, {"send_at": _later(hours=1)}), "conflict")


def test_gate_first_waiting_for_approval_is_editable(
    patch: Callable[..., Any], send: Callable[..., Any], owner: Tenant
) -> None:
    owner.mailbox.oversight_mode = "gated_send"
    owner.mailbox.save()
    held = Email.objects.get(pk=send(send_at=_later(hours=2)).json()["id"])
    assert held.status == EmailStatus.PENDING_SEND_APPROVAL
    response = patch(held, {"subject": "Better subject"})
    assert response.status_code == 200
    held.refresh_from_db()
    assert held.subject == "Better subject"
    assert held.status == EmailStatus.PENDING_SEND_APPROVAL  # held again after the re-scan


@pytest.mark.parametrize(
    ("payload", "code", "param"),
    [
        ({}, "missing_parameter", "send_at"),
        ({"send_at": "2020-01-01T00:00:00Z"}, "validation_error", "send_at"),
        ({"send_at": "tomorrow"}, "invalid_parameter", "send_at"),
        ({"to": []}, "missing_parameter", "to"),
        ({"to": ["bad"]}, "invalid_parameter", "to.0"),
    ],
)
def test_validation(
    patch: Callable[..., Any], scheduled: Email, payload: dict[str, Any], code: str, param: str
) -> None:
    assert_error(patch(scheduled, payload), code, param=param)


def test_other_tenant_and_unknown_email(
    patch: Callable[..., Any], scheduled: Email, other: Tenant
) -> None:
    assert_error(
        patch(scheduled, {"send_at": _later(hours=1)}, mailbox_id=other.mailbox.pk),
        "not_found",
        resource="mailbox",
    )
    scheduled.pk = "01NOPE"
    assert_error(patch(scheduled, {"send_at": _later(hours=1)}), "not_found", resource="email")
