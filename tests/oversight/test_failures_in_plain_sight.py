"""Nothing keeps the operator uninformed, and failures show where they decide.

An email that fails after it was accepted never stays in a transient status: it becomes
send_failed with its failure_reason, and the operator is told (an email and the
message.send_failed event). An operator email that does not go out is retried and shown in
the console. After a decision the console says what really happened, a banner shows while
the account cannot send, and a failed email can be retried once its cause is gone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.core.mail.message import EmailMessage
from django.test import TestCase
from django.utils import timezone

from accounts.actors import Actor
from accounts.models import AuditEntry
from accounts.support import support_sending_set
from mailboxes.models import Email, EmailStatus, WebhookDelivery, WebhookEvent
from mailboxes.notification_tasks import send_due_operator_notifications
from mailboxes.tasks import sweep_stuck_emails
from oversight.models import OperatorNotification
from oversight.notifications import MAX_ATTEMPTS
from tests.conftest import Tenant
from tests.console.conftest import card_version, held_email, signed_in
from tests.oversight.conftest import held

pytestmark = pytest.mark.django_db

Status = OperatorNotification.Status


def _is_notification(message: EmailMessage) -> bool:
    return bool(message.extra_headers.get("X-MultiMail-Notification"))


class AgentMailFails(EmailBackend):
    """A mailer that breaks on the agent's messages in a way nothing anticipated (not one of
    the provider errors the pipeline classifies), and still delivers operator email."""

    def send_messages(self, messages: Sequence[EmailMessage]) -> int:
        if any(not _is_notification(message) for message in messages):
            raise RuntimeError("the mailer crashed")
        return super().send_messages(messages)


class OperatorMailFails(EmailBackend):
    """A mailer that refuses operator email (a full mailbox, a relay outage) and sends the
    rest."""

    def send_messages(self, messages: Sequence[EmailMessage]) -> int:
        if any(_is_notification(message) for message in messages):
            raise ConnectionRefusedError("relay refused the connection")
        return super().send_messages(messages)


@pytest.fixture
def hooked(owner: Tenant) -> Tenant:
    owner.mailbox.webhook_url = "https://hooks.example/mail"
    owner.mailbox.save()
    return owner


def _send(api: Any, tenant: Tenant, **body: Any) -> Email:
    payload = {"to": ["client@example.org"], "subject": "Quarterly numbers", "markdown": "Hi"}
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = api("send").post(
            f"/v1/mailboxes/{tenant.mailbox.pk}/send", {**payload, **body}, format="json"
        )
    assert response.status_code == 202, response.content
    return Email.objects.get(pk=response.json()["id"])


def _assert_failed_and_told(email: Email, reason_start: str) -> None:
    email.refresh_from_db()
    assert email.status == EmailStatus.SEND_FAILED
    assert email.failure_reason.startswith(reason_start), email.failure_reason
    [event] = WebhookDelivery.objects.filter(event_type=WebhookEvent.MESSAGE_SEND_FAILED)
    assert event.payload["data"]["email_id"] == email.pk
    assert event.payload["data"]["failure_reason"] == email.failure_reason
    [notice] = [m for m in mail.outbox if m.subject.startswith("[MultiMail] Not sent: ")]
    assert email.failure_reason in notice.body
    assert f"/console/mailboxes/{email.mailbox_id}/emails/{email.pk}" in notice.body


def test_a_message_that_cannot_be_built_fails_and_the_operator_is_told(
    hooked: Tenant, api: Any
) -> None:
    """A CR/LF in the subject, stored before field validation refused them: approving it
    used to leave it in sending for ever, with no reason and no notification."""
    hooked.mailbox.oversight_mode = "gated_send"
    hooked.mailbox.save()
    email = held(hooked.mailbox, subject="Invoice\r\nBcc: everyone@example.net")
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = api("oversight").post(
            "/v1/oversight/decide", {"email_id": email.pk, "action": "approve"}, format="json"
        )
    assert response.status_code == 200, response.content
    _assert_failed_and_told(email, "message_unbuildable: the message could not be built")
    # Only operator email left; the notification's own subject is one safe line.
    assert all(_is_notification(message) for message in mail.outbox)
    assert "\n" not in mail.outbox[-1].subject
    assert "Invoice Bcc: everyone@example.net" in mail.outbox[-1].subject


def test_a_mailer_that_keeps_crashing_fails_the_email_after_its_retries(
    hooked: Tenant, api: Any, settings: Any
) -> None:
    settings.MAILERS = {"default": {"BACKEND": f"{__name__}.AgentMailFails"}}
    email = _send(api, hooked)
    _assert_failed_and_told(email, "internal_error: delivering it failed 6 times (RuntimeError)")
    assert "the mailer crashed" not in email.failure_reason  # internals stay in the log


def test_an_email_stuck_for_hours_is_given_up_and_reported(hooked: Tenant) -> None:
    email = held_email(hooked.mailbox, status=EmailStatus.PENDING_SCAN)
    Email.objects.filter(pk=email.pk).update(status_changed_at=timezone.now() - timedelta(hours=7))
    with TestCase.captureOnCommitCallbacks(execute=True):
        sweep_stuck_emails()
    _assert_failed_and_told(email, "stuck: it was still pending_scan after 6 hours")


def test_an_operator_email_that_fails_is_retried_and_shown_in_the_console(
    owner: Tenant, settings: Any
) -> None:
    settings.MAILERS = {"default": {"BACKEND": f"{__name__}.OperatorMailFails"}}
    email = held(owner.mailbox)
    notification = OperatorNotification.objects.get(email=email)
    assert (notification.status, notification.attempts) == (Status.PENDING, 1)
    assert "relay refused the connection" in notification.last_error
    assert notification.next_attempt_at > timezone.now()
    console = signed_in(owner)
    card = console.get("/console/").content.decode()
    assert f"The email telling {owner.account.oversight_email} about this" in card
    assert "could not be sent yet (1 attempt;" in card
    page = console.get(f"/console/mailboxes/{owner.mailbox.pk}/emails/{email.pk}")
    assert "relay refused the connection" in page.content.decode()

    # The sweep tries again once it is due; this time the relay takes it.
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    OperatorNotification.objects.filter(pk=notification.pk).update(next_attempt_at=timezone.now())
    assert send_due_operator_notifications() == 1
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == (Status.SENT, 2)
    [message] = mail.outbox
    assert "waiting for approval" in message.subject
    assert "could not be sent" not in console.get("/console/").content.decode()


def test_an_operator_email_that_never_goes_out_is_shown_as_given_up(
    owner: Tenant, settings: Any
) -> None:
    settings.MAILERS = {"default": {"BACKEND": f"{__name__}.OperatorMailFails"}}
    email = held(owner.mailbox)
    for _ in range(MAX_ATTEMPTS - 1):
        OperatorNotification.objects.update(next_attempt_at=timezone.now())
        send_due_operator_notifications()
    notification = OperatorNotification.objects.get(email=email)
    assert (notification.status, notification.attempts) == (Status.FAILED, MAX_ATTEMPTS)
    assert send_due_operator_notifications() == 0
    card = signed_in(owner).get("/console/").content.decode()
    assert f"could not be sent after {MAX_ATTEMPTS} attempts and was given up" in card


def test_a_notification_no_longer_needed_is_not_sent(owner: Tenant, settings: Any) -> None:
    """Decided before its retry came: the operator is not asked about it any more."""
    settings.MAILERS = {"default": {"BACKEND": f"{__name__}.OperatorMailFails"}}
    email = held(owner.mailbox)
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    console = signed_in(owner)
    version = card_version(console, email)
    console.post(f"/console/queue/{email.pk}/decide", {"action": "reject", "version": version})
    OperatorNotification.objects.update(next_attempt_at=timezone.now())
    send_due_operator_notifications()
    assert OperatorNotification.objects.get(email=email).status == Status.SKIPPED
    assert mail.outbox == []


@pytest.mark.django_db(transaction=True)
def test_a_disabled_account_says_so_and_its_failed_mail_can_be_retried(owner: Tenant) -> None:
    owner.mailbox.oversight_mode = "gated_send"
    owner.mailbox.save()
    email = held(owner.mailbox)
    support = Actor.support(owner.account, "support@multimail.example")
    support_sending_set(actor=support, disabled=True, reason="bounce rate above 10%")
    console = signed_in(owner)

    queue = console.get("/console/").content.decode()
    assert 'id="sending-banner"' in queue
    assert "Mail from this account is not being sent." in queue
    assert "Sending is disabled for this account: bounce rate above 10%." in queue

    # The transaction commits for real here: delivery runs before the answer is rendered.
    decided = console.post(
        f"/console/queue/{email.pk}/decide",
        {"action": "approve", "version": card_version(console, email)},
        headers={"HX-Request": "true"},
    )
    outcome = decided.content.decode()
    assert (
        "Approved, but sending is disabled for this account: bounce rate above 10%. "
        "It is not sent" in outcome
    )
    assert "on its way" not in outcome
    email.refresh_from_db()
    assert email.status == EmailStatus.SEND_FAILED
    assert email.failure_reason == "sending_disabled: bounce rate above 10%"
    assert any(m.subject == "[MultiMail] Not sent: Quarterly numbers" for m in mail.outbox)

    page_url = f"/console/mailboxes/{owner.mailbox.pk}/emails/{email.pk}"
    page = console.get(page_url).content.decode()
    assert "Why it failed" in page
    assert "sending_disabled: bounce rate above 10%" in page
    assert "Send it again" in page

    # While the cause is there, a retry is refused and changes nothing.
    refused = console.post(f"{page_url}/retry", follow=True).content.decode()
    assert "It would fail again: sending is disabled for this account" in refused
    email.refresh_from_db()
    assert email.status == EmailStatus.SEND_FAILED

    support_sending_set(actor=support, disabled=False)
    assert 'id="sending-banner"' not in console.get("/console/").content.decode()
    mail.outbox.clear()
    retried = console.post(f"{page_url}/retry", follow=True).content.decode()
    assert "goes through the content scan and the oversight policy again" in retried
    email.refresh_from_db()
    # Through the policy again: the gated mailbox holds it for a new decision.
    assert email.status == EmailStatus.PENDING_SEND_APPROVAL
    assert email.approved_at is None
    assert email.failure_reason == ""
    [notice] = mail.outbox
    assert notice.subject == "[MultiMail] Outbound email waiting for approval: Quarterly numbers"
    entry = AuditEntry.objects.get(action="email.retried", resource_id=email.pk)
    assert entry.actor_label == f"operator:{owner.operator.email}"
    assert entry.metadata["failure_reason"] == "sending_disabled: bounce rate above 10%"


def test_every_refused_or_failed_email_shows_why_on_its_page(owner: Tenant) -> None:
    console = signed_in(owner)
    cases = {
        EmailStatus.REJECTED: "content_rejected: phishing pattern",
        EmailStatus.SEND_FAILED: "provider refused: 406 inactive recipient",
        EmailStatus.CANCELLED: "mailbox deleted",
    }
    for status, reason in cases.items():
        email = held_email(owner.mailbox, status=status, failure_reason=reason)
        page = console.get(f"/console/mailboxes/{owner.mailbox.pk}/emails/{email.pk}")
        assert reason in page.content.decode(), status
    decided = held_email(owner.mailbox, status=EmailStatus.REJECTED, decision_reason="Wrong client")
    page = console.get(f"/console/mailboxes/{owner.mailbox.pk}/emails/{decided.pk}")
    assert "Wrong client" in page.content.decode()
