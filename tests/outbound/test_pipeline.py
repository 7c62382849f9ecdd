"""The outbound pipeline with in-process tasks: render, scan, policy, delivery, schedules,
the sweep, retries and local delivery between this server's mailboxes."""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import requests
from anymail.exceptions import AnymailRequestsAPIError
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.utils import timezone

from billing.models import UsageDaily
from mailboxes import tasks
from mailboxes.models import Direction, Email, EmailStatus, WebhookDelivery
from mailboxes.services.outbound import pipeline
from tests.conftest import Tenant
from tests.outbound.conftest import attachment

pytestmark = pytest.mark.django_db


def _later(**delta: int) -> str:
    return (timezone.now() + timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _mode(tenant: Tenant, mode: str) -> None:
    tenant.mailbox.oversight_mode = mode
    tenant.mailbox.save(update_fields=["oversight_mode"])


def _email(response: Any) -> Email:
    assert response.status_code == 202, response.content
    return Email.objects.get(pk=response.json()["id"])


def test_autonomous_send_renders_and_delivers(send: Callable[..., Any], owner: Tenant) -> None:
    owner.mailbox.display_name = "Acme Agent"
    owner.mailbox.auto_cc = "cc-archive@example.org"
    owner.mailbox.auto_bcc = "bcc-archive@example.org"
    owner.mailbox.save()
    email = _email(
        send(
            markdown="# Hi\n\n<script>alert(1)</script> [site](https://example.org)",
            attachments=[attachment()],
        )
    )
    assert email.status == EmailStatus.SENT
    assert email.sent_at is not None
    assert "<h1>Hi</h1>" in email.html
    assert "<script>" not in email.html
    assert "Hi" in email.text
    [message] = mail.outbox
    assert message.from_email == "Acme Agent <agent@acme.multimail.localhost>"
    assert message.to == ["client@example.org"]
    assert message.cc == ["cc-archive@example.org"]
    assert message.bcc == ["bcc-archive@example.org"]
    assert message.attachments[0].filename == "notes.txt"
    raw = message.message()
    assert raw["Message-ID"] == email.message_id
    assert raw["List-Unsubscribe"]  # compliance headers
    html = message.alternatives[0].content
    assert "https://example.org" in html
    assert UsageDaily.objects.get(account=owner.account, event_type="emails_sent").count == 1
    assert WebhookDelivery.objects.filter(event_type="message.sent").count() == 0  # no targets


def test_message_sent_event(send: Callable[..., Any], owner: Tenant) -> None:
    owner.mailbox.webhook_url = "https://hooks.example.org/x"
    owner.mailbox.save()
    email = _email(send())
    delivery = WebhookDelivery.objects.get(event_type="message.sent")
    assert delivery.payload["data"]["email_id"] == email.pk


def test_gated_send_is_held(send: Callable[..., Any], owner: Tenant) -> None:
    _mode(owner, "gated_send")
    response = send()
    assert "approval" in response.json()["message"]
    email = _email(response)
    assert email.status == EmailStatus.PENDING_SEND_APPROVAL
    assert email.html  # rendered before the operator sees it
    assert not [m for m in mail.outbox if m.to == ["client@example.org"]]


def test_monitored_copies_the_operator(send: Callable[..., Any], owner: Tenant) -> None:
    _mode(owner, "monitored")
    email = _email(send())
    assert email.status == EmailStatus.SENT
    [message] = mail.outbox
    assert owner.account.oversight_email in message.bcc


def test_mode_lowered_to_read_only_before_the_scan(
    sender: Any, owner: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    # Accepted while autonomous; the task runs after the mode was lowered.
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = sender.post(
            f"/v1/mailboxes/{owner.mailbox.pk}/send",
            {"to": ["a@example.org"], "subject": "s", "markdown": "m"},
            format="json",
        )
    _mode(owner, "read_only")
    for callback in callbacks:
        callback()
    email = Email.objects.get(pk=response.json()["id"])
    assert email.status == EmailStatus.REJECTED
    assert email.failure_reason.startswith("mailbox_read_only")
    assert mail.outbox == []


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"attachments": [attachment("setup.exe", b"MZ", "application/octet-stream")]},
         "executable attachment"),
        ({"attachments": [attachment("run.txt", b"x", "application/x-msdownload")]},
         "prohibited attachment type"),
        ({"markdown": "Your account will be suspended. Verify your password at "
                      "[https://bank.example/login](https://evil.example/steal)."},
         "phishing pattern"),
    ],
)  # fmt: skip
def test_content_filter_rejects(
    send: Callable[..., Any], sender: Any, owner: Tenant, extra: dict[str, Any], reason: str
) -> None:
    email = _email(send(**extra))
    assert email.status == EmailStatus.REJECTED
    assert email.failure_reason.startswith(f"content_rejected: {reason}")
    assert mail.outbox == []
    # The reading side shows why.
    detail = sender.get(f"/v1/mailboxes/{owner.mailbox.pk}/emails/{email.pk}").json()
    assert detail["status"] == "rejected"


def test_local_delivery_hands_the_mime_to_inbound(
    send: Callable[..., Any], owner: Tenant, other: Tenant
) -> None:
    email = _email(send(to=[other.mailbox.address, "remote@example.org"]))
    assert email.status == EmailStatus.SENT
    received = Email.objects.get(mailbox=other.mailbox, direction=Direction.INBOUND)
    assert received.message_id == email.message_id
    assert received.subject == email.subject
    assert received.status == EmailStatus.UNREAD
    # The provider only gets the remote recipient; the header still names both.
    [message] = mail.outbox
    assert message.to == ["remote@example.org"]
    assert other.mailbox.address in message.message()["To"]


def test_only_local_recipients_use_no_mailer(
    send: Callable[..., Any], owner: Tenant, other: Tenant
) -> None:
    email = _email(send(to=[other.mailbox.address]))
    assert email.status == EmailStatus.SENT
    assert mail.outbox == []
    assert Email.objects.filter(mailbox=other.mailbox, direction=Direction.INBOUND).count() == 1


def test_schedule_autonomous_then_due(
    send: Callable[..., Any], owner: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    email = _email(send(send_at=_later(hours=1)))
    assert email.status == EmailStatus.SCHEDULED
    assert tasks.send_due_scheduled() == 0
    Email.objects.filter(pk=email.pk).update(send_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.send_due_scheduled() == 1
    email.refresh_from_db()
    assert email.status == EmailStatus.SENT
    assert len(mail.outbox) == 1


def test_schedule_gate_first_holds_now(send: Callable[..., Any], owner: Tenant) -> None:
    _mode(owner, "gated_send")
    email = _email(send(send_at=_later(hours=1), gate_timing="gate_first"))
    assert email.status == EmailStatus.PENDING_SEND_APPROVAL


def test_schedule_first_holds_when_due(
    send: Callable[..., Any], owner: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    _mode(owner, "gated_send")
    email = _email(send(send_at=_later(hours=1), gate_timing="schedule_first"))
    assert email.status == EmailStatus.SCHEDULED
    Email.objects.filter(pk=email.pk).update(send_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        tasks.send_due_scheduled()
    email.refresh_from_db()
    assert email.status == EmailStatus.PENDING_SEND_APPROVAL


def test_approved_gate_first_is_sent_when_due(
    owner: Tenant, django_capture_on_commit_callbacks: Any, send: Callable[..., Any]
) -> None:
    email = _email(send(send_at=_later(hours=1)))
    Email.objects.filter(pk=email.pk).update(
        send_at=timezone.now() - timedelta(seconds=1), approved_at=timezone.now()
    )
    _mode(owner, "gated_send")  # approved mail is not held twice
    with django_capture_on_commit_callbacks(execute=True):
        tasks.send_due_scheduled()
    email.refresh_from_db()
    assert email.status == EmailStatus.SENT


def test_default_gate_timing_comes_from_the_mailbox(
    send: Callable[..., Any], owner: Tenant
) -> None:
    owner.mailbox.default_gate_timing = "schedule_first"
    owner.mailbox.save()
    _mode(owner, "gated_send")
    email = _email(send(send_at=_later(hours=1)))
    assert email.gate_timing == "schedule_first"
    assert email.status == EmailStatus.SCHEDULED


def test_tasks_are_idempotent(send: Callable[..., Any], owner: Tenant) -> None:
    email = _email(send())
    tasks.process_email(email.pk)
    tasks.deliver_email(email.pk)
    assert len(mail.outbox) == 1
    email.refresh_from_db()
    assert email.send_attempts == 1


def test_sweep_resumes_stuck_emails(
    sender: Any, owner: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    # The task was lost (broker down at commit): the email sits in pending_scan.
    with django_capture_on_commit_callbacks(execute=False):
        response = sender.post(
            f"/v1/mailboxes/{owner.mailbox.pk}/send",
            {"to": ["a@example.org"], "subject": "s", "markdown": "m"},
            format="json",
        )
    email = Email.objects.get(pk=response.json()["id"])
    assert tasks.sweep_stuck_emails() == 0  # not stuck yet
    Email.objects.filter(pk=email.pk).update(status_changed_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.sweep_stuck_emails() == 1
    email.refresh_from_db()
    assert email.status == EmailStatus.SENT
    # A lost deliver task: stuck in sending.
    Email.objects.filter(pk=email.pk).update(
        status=EmailStatus.SENDING, status_changed_at=timezone.now() - timedelta(hours=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.sweep_stuck_emails() == 1
    email.refresh_from_db()
    assert email.status == EmailStatus.SENT
    assert len(mail.outbox) == 2


def _provider_error(status: int) -> AnymailRequestsAPIError:
    response = requests.Response()
    response.status_code = status
    response.reason = "Service Unavailable"
    response._content = b'{"Message": "down"}'
    return AnymailRequestsAPIError("Postmark API error", response=response)


class _Flaky(EmailBackend):
    failures: list[Exception] = []

    def send_messages(self, messages: Any) -> int:
        if self.failures:
            raise self.failures.pop(0)
        return super().send_messages(messages)


@pytest.fixture
def flaky(settings: Any) -> type[_Flaky]:
    settings.MAILERS = {"default": {"BACKEND": f"{__name__}._Flaky"}}
    _Flaky.failures = []
    return _Flaky


class _SilentlyDropping(EmailBackend):
    """Sends the first message nowhere and says so only through its return value."""

    dropped = 0

    def send_messages(self, messages: Any) -> int:
        if not _SilentlyDropping.dropped:
            _SilentlyDropping.dropped += 1
            return 0
        return super().send_messages(messages)


def test_a_mailer_that_sent_nothing_is_retried(send: Callable[..., Any], settings: Any) -> None:
    settings.MAILERS = {"default": {"BACKEND": f"{__name__}._SilentlyDropping"}}
    _SilentlyDropping.dropped = 0
    email = _email(send())
    assert email.status == EmailStatus.SENT
    assert email.send_attempts == 2
    assert len(mail.outbox) == 1


def test_transient_errors_are_retried(send: Callable[..., Any], flaky: type[_Flaky]) -> None:
    flaky.failures = [
        smtplib.SMTPServerDisconnected("gone"),
        smtplib.SMTPResponseException(451, b"try later"),
    ]
    email = _email(send())
    assert email.status == EmailStatus.SENT
    assert email.send_attempts == 3
    assert len(mail.outbox) == 1


def test_retries_exhausted_is_send_failed(send: Callable[..., Any], flaky: type[_Flaky]) -> None:
    flaky.failures = [_provider_error(503) for _ in range(10)]
    email = _email(send())
    assert email.status == EmailStatus.SEND_FAILED
    assert "provider unavailable after 6 attempts" in email.failure_reason
    assert mail.outbox == []


def test_permanent_error_is_send_failed(send: Callable[..., Any], flaky: type[_Flaky]) -> None:
    flaky.failures = [smtplib.SMTPResponseException(550, b"no such user")]
    email = _email(send())
    assert email.status == EmailStatus.SEND_FAILED
    assert email.failure_reason.startswith("provider refused: 550")


def test_sending_disabled_after_accept(send: Callable[..., Any], owner: Tenant) -> None:
    email = _email(send(send_at=_later(hours=1)))
    owner.account.sending_disabled = True
    owner.account.sending_disabled_reason = "complaints"
    owner.account.save()
    Email.objects.filter(pk=email.pk).update(send_at=timezone.now() - timedelta(seconds=1))
    pipeline.email_release_scheduled(email_id=email.pk)
    pipeline.email_deliver(email_id=email.pk)
    email.refresh_from_db()
    assert email.status == EmailStatus.SEND_FAILED
    assert email.failure_reason == "sending_disabled: complaints"


def test_anymail_backend_gets_the_stream_and_stores_the_provider_id(
    send: Callable[..., Any], settings: Any, other: Tenant
) -> None:
    settings.MAILERS = {"default": {"BACKEND": "anymail.backends.test.EmailBackend"}}
    settings.POSTMARK_MESSAGE_STREAM = "agents"
    email = _email(send(to=["remote@example.org", other.mailbox.address]))
    assert email.status == EmailStatus.SENT
    [message] = mail.outbox
    assert message.anymail_test_params["MessageStream"] == "agents"
    assert message.anymail_test_params["metadata"] == {"email_id": email.pk}
    # The ESP sends to its header recipients: the local mailbox got its copy already.
    assert message.to == ["remote@example.org"]
    assert email.provider_message_id == str(message.anymail_status.message_id)
    assert Email.objects.filter(mailbox=other.mailbox, direction=Direction.INBOUND).exists()


def test_provider_client_error_is_permanent(send: Callable[..., Any], flaky: type[_Flaky]) -> None:
    flaky.failures = [_provider_error(422)]
    email = _email(send())
    assert email.status == EmailStatus.SEND_FAILED
    assert email.failure_reason.startswith("provider refused")
    assert email.send_attempts == 0


def test_footer_and_signature(send: Callable[..., Any], owner: Tenant) -> None:
    owner.mailbox.signature_block = "Ada, Acme support"
    owner.mailbox.save()
    _email(send())
    [message] = mail.outbox
    assert "Ada, Acme support" in message.body
    assert "Ada, Acme support" in message.alternatives[0].content


def test_deleting_the_mailbox_stops_its_mail(
    send: Callable[..., Any], owner: Tenant, api: Callable[..., Any]
) -> None:
    queued = _email(send(send_at=_later(hours=1)))
    assert queued.status == EmailStatus.SCHEDULED
    in_flight = _email(send(subject="other"))
    Email.objects.filter(pk=in_flight.pk).update(status=EmailStatus.SENDING, sent_at=None)
    mail.outbox.clear()
    assert api("admin").delete(f"/v1/mailboxes/{owner.mailbox.pk}").status_code == 200
    queued.refresh_from_db()
    assert queued.status == EmailStatus.CANCELLED
    tasks.deliver_email(in_flight.pk)
    in_flight.refresh_from_db()
    assert in_flight.status == EmailStatus.SEND_FAILED
    assert in_flight.failure_reason.startswith("mailbox deleted")
    assert mail.outbox == []
