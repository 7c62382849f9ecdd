"""Edit, then approve, from the console's email page: the corrections and the approval in
one form; the email is sent as edited."""

from __future__ import annotations

from django.test import Client, TestCase

from mailboxes.models import EmailStatus
from tests.conftest import Tenant
from tests.console.conftest import held_email


def test_edit_then_approve_from_the_email_page(owner: Tenant, console: Client) -> None:
    from django.core import mail

    from accounts.models import AuditEntry
    from tests.oversight.conftest import shown_version

    email = held_email(owner.mailbox, subject="Typo in teh subject", markdown="Hi", text="Hi")
    url = f"/console/mailboxes/{owner.mailbox.pk}/emails/{email.pk}"
    page = console.get(url).content.decode()
    assert "Edit, then approve" in page
    mail.outbox.clear()
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = console.post(
            f"/console/queue/{email.pk}/decide",
            {
                "action": "approve",
                "edit": "1",
                "version": shown_version(page),
                "from": "email",
                "mailbox_id": owner.mailbox.pk,
                "to": "fixed@example.org, second@example.org",
                "cc": "",
                "bcc": "",
                "subject": "Typo in the subject",
                "markdown": "Hi, corrected.",
            },
            follow=True,
        )
    assert "Approved: the email is on its way." in response.content.decode()
    email.refresh_from_db()
    assert email.status == EmailStatus.SENT
    assert email.edited_by_operator is True
    assert email.to == ["fixed@example.org", "second@example.org"]
    [sent] = [m for m in mail.outbox if not m.extra_headers.get("X-MultiMail-Notification")]
    assert sent.message()["Subject"] == "Typo in the subject"
    assert AuditEntry.objects.filter(action="email.edited_by_operator").exists()


def test_a_bad_edit_decides_nothing(owner: Tenant, console: Client) -> None:
    email = held_email(owner.mailbox)
    response = console.post(
        f"/console/queue/{email.pk}/decide",
        {"action": "approve", "edit": "1", "version": "v", "to": "not an address", "markdown": "x"},
        follow=True,
    )
    assert "Enter a valid email address: it " in response.content.decode()
    email.refresh_from_db()
    assert email.status == EmailStatus.PENDING_SEND_APPROVAL
