"""The stop switch through HTTP: POST /v1/oversight/stop holds every outbound email of the
account (new, queued, scheduled and approved ones); only the operator resumes it."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.core import mail
from django.test import TestCase
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import AuditEntry
from mailboxes import tasks
from mailboxes.models import Email, EmailStatus, GateTiming, OversightMode
from mailboxes.services.outbound import pipeline
from oversight.policy import STOPPED_HOLD_REASON
from tests.conftest import Tenant, assert_error
from tests.oversight.conftest import held, make_email

STOP, RESUME, DECIDE = "/v1/oversight/stop", "/v1/oversight/resume", "/v1/oversight/decide"
CODE = re.compile(r"^\s{4}([A-Z0-9]{3}-[A-Z0-9]{3}-[A-Z0-9]{3})$", re.MULTILINE)


def _post(client: Any, path: str, payload: dict[str, Any] | None = None) -> Any:
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(path, payload or {}, format="json")


def _send(client: Any, tenant: Tenant, **extra: Any) -> Email:
    payload = {"to": ["client@example.org"], "subject": "Numbers", "markdown": "Hi", **extra}
    response = _post(client, f"/v1/mailboxes/{tenant.mailbox.pk}/send", payload)
    assert response.status_code == 202, response.content
    return Email.objects.get(pk=response.json()["id"])


def _stopped(tenant: Tenant, api: Any) -> None:
    response = _post(api("oversight"), STOP)
    assert response.status_code == 200, response.content
    tenant.account.refresh_from_db()


def test_stop_needs_admin_or_oversight_and_shows_on_the_account(owner: Tenant, api) -> None:
    for scopes in (("send",), ("read",), ("oversight_read",)):
        assert_error(_post(api(*scopes), STOP), "insufficient_permissions")
    for scopes in (("admin",), ("oversight",)):
        response = _post(api(*scopes), STOP)
        assert response.status_code == 200, response.content
        assert response.json()["status"] == "stopped"
        assert response.json()["sending_stopped"] is True
    info = api("read").get("/v1/account").json()
    assert info["sending_stopped"] is True
    assert info["sending_stopped_at"] is not None
    # Stopping twice changed nothing the second time.
    assert AuditEntry.objects.filter(action="account.sending_stopped").count() == 1


def test_sends_are_accepted_and_held_with_the_reason(owner: Tenant, api) -> None:
    _stopped(owner, api)
    mail.outbox.clear()
    sender = api("send", "read")
    email = _send(sender, owner)
    email.refresh_from_db()
    assert email.status == EmailStatus.PENDING_SEND_APPROVAL
    assert email.hold_reason == STOPPED_HOLD_REASON
    detail = sender.get(f"/v1/mailboxes/{owner.mailbox.pk}/emails/{email.pk}").json()
    assert detail["status"] == "pending_send_approval"
    assert detail["hold_reason"] == STOPPED_HOLD_REASON
    pending = api("oversight_read").get("/v1/oversight/pending").json()["emails"]
    assert [(item["id"], item["hold_reason"]) for item in pending] == [
        (email.pk, STOPPED_HOLD_REASON)
    ]
    # The operator hears of it like of any held email; nothing went to the recipient.
    assert [message.to for message in mail.outbox] == [[owner.account.oversight_email]]


def test_a_gated_mailbox_holds_as_its_mode_does(owner: Tenant, api) -> None:
    owner.mailbox.oversight_mode = OversightMode.GATED_SEND
    owner.mailbox.save()
    _stopped(owner, api)
    email = _send(api("send"), owner)
    email.refresh_from_db()
    assert email.status == EmailStatus.PENDING_SEND_APPROVAL
    assert email.hold_reason == ""


def test_approving_while_stopped_is_refused_and_rejecting_works(owner: Tenant, api) -> None:
    first, second = held(owner.mailbox), held(owner.mailbox)
    _stopped(owner, api)
    client = api("oversight")
    refused = _post(client, DECIDE, {"email_id": first.pk, "action": "approve"})
    assert_error(refused, "conflict")
    first.refresh_from_db()
    assert first.status == EmailStatus.PENDING_SEND_APPROVAL
    rejected = _post(client, DECIDE, {"email_id": second.pk, "action": "reject"})
    assert rejected.json()["status"] == "rejected"


def test_scheduled_mail_waits_then_is_held_when_due(owner: Tenant, api) -> None:
    soon = (timezone.now() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    email = _send(api("send"), owner, send_at=soon)
    email.refresh_from_db()
    assert email.status == EmailStatus.SCHEDULED
    _stopped(owner, api)
    # Not due yet: it keeps its place (a short stop does not undo the schedule).
    tasks.send_due_scheduled()
    email.refresh_from_db()
    assert email.status == EmailStatus.SCHEDULED
    Email.objects.filter(pk=email.pk).update(send_at=timezone.now() - timedelta(seconds=1))
    with TestCase.captureOnCommitCallbacks(execute=True):
        tasks.send_due_scheduled()
    email.refresh_from_db()
    assert email.status == EmailStatus.PENDING_SEND_APPROVAL
    assert email.hold_reason == STOPPED_HOLD_REASON
    assert email.sent_at is None


def test_an_approved_scheduled_email_is_held_and_needs_a_new_decision(owner: Tenant, api) -> None:
    owner.mailbox.oversight_mode = OversightMode.GATED_SEND
    owner.mailbox.save()
    later = (timezone.now() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    email = _send(api("send"), owner, send_at=later, gate_timing=GateTiming.GATE_FIRST)
    approved = _post(api("oversight"), DECIDE, {"email_id": email.pk, "action": "approve"})
    assert approved.json()["status"] == "approved"
    _stopped(owner, api)
    Email.objects.filter(pk=email.pk).update(send_at=timezone.now() - timedelta(seconds=1))
    with TestCase.captureOnCommitCallbacks(execute=True):
        tasks.send_due_scheduled()
    email.refresh_from_db()
    assert email.status == EmailStatus.PENDING_SEND_APPROVAL
    assert email.hold_reason == STOPPED_HOLD_REASON
    assert (email.approved_at, email.approved_by, email.approved_version) == (None, None, "")


def test_the_last_check_before_the_provider_holds_mail_already_sending(owner: Tenant, api) -> None:
    email = make_email(owner.mailbox, status=EmailStatus.SENDING, subject="On its way")
    _stopped(owner, api)
    with TestCase.captureOnCommitCallbacks(execute=True):
        pipeline.email_deliver(email_id=email.pk)
    email.refresh_from_db()
    assert email.status == EmailStatus.PENDING_SEND_APPROVAL
    assert email.hold_reason == STOPPED_HOLD_REASON
    assert email.provider_message_id == ""
    assert not [m for m in mail.outbox if "client@example.org" in m.to]


def test_resume_with_a_key_needs_the_operators_code(owner: Tenant, api) -> None:
    # The test account lets keys do admin actions without approval: resuming still asks.
    assert owner.account.require_operator_approval is False
    _stopped(owner, api)
    stuck = _send(api("send"), owner)
    mail.outbox.clear()
    client = api("oversight")
    first = _post(client, RESUME)
    assert first.status_code == 202, first.content
    assert first.json()["status"] == "pending_approval"
    owner.account.refresh_from_db()
    assert owner.account.sending_stopped is True
    [notice] = mail.outbox
    code = CODE.search(notice.body).group(1)
    assert_error(
        _post(client, RESUME, {"approval_code": "AAA-BBB-CCC"}),
        "validation_error",
        param="approval_code",
    )
    done = _post(client, RESUME, {"approval_code": code})
    assert done.status_code == 200, done.content
    assert done.json()["sending_stopped"] is False
    assert api("read").get("/v1/account").json()["sending_stopped"] is False
    assert AuditEntry.objects.filter(action="account.sending_resumed").exists()
    # What the stop held stays held until the operator decides; then it leaves.
    stuck.refresh_from_db()
    assert stuck.status == EmailStatus.PENDING_SEND_APPROVAL
    sent = _post(client, DECIDE, {"email_id": stuck.pk, "action": "approve"})
    assert sent.json()["status"] == "approved_and_sent"
    stuck.refresh_from_db()
    assert stuck.status == EmailStatus.SENT


def test_resuming_a_running_account_needs_no_code(owner: Tenant, api) -> None:
    response = _post(api("admin"), RESUME)
    assert response.status_code == 200
    assert response.json()["sending_stopped"] is False


def test_other_tenants_are_not_stopped(owner: Tenant, other: Tenant, api) -> None:
    _stopped(owner, api)
    email = _send(api("send", account=other.account), other)
    email.refresh_from_db()
    assert email.status == EmailStatus.SENT


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(code=st.text(max_size=40))
def test_any_approval_code_is_a_catalog_error_or_pending(owner: Tenant, api, code: str) -> None:
    if not owner.account.sending_stopped:
        _stopped(owner, api)
    response = _post(api("oversight"), RESUME, {"approval_code": code})
    # Past the attempt limit on typed codes, further guesses answer too_many_attempts.
    assert response.status_code in (202, 400, 422, 429), response.content
    if response.status_code != 202:
        assert response.json()["error"]["code"] in (
            "invalid_parameter",
            "validation_error",
            "too_many_attempts",
        )
    owner.account.refresh_from_db()
    assert owner.account.sending_stopped is True
