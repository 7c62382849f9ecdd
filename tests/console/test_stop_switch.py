"""The stop switch in the console: a clear button on the queue, a banner on every page
while sending is stopped, and a resume that needs no code (the operator is signing in)."""

from __future__ import annotations

from django.test import Client

from accounts.models import Account, AuditEntry
from mailboxes.models import EmailStatus
from oversight.policy import STOPPED_HOLD_REASON
from tests.conftest import Tenant
from tests.console.conftest import card_version, held_email


def _stopped(owner: Tenant) -> bool:
    return Account.objects.get(pk=owner.account.pk).sending_stopped


def test_the_queue_offers_the_stop_and_the_banner_offers_resume(
    owner: Tenant, console: Client
) -> None:
    page = console.get("/console/").content.decode()
    assert "Stop all sending" in page
    assert 'action="/console/sending/stop"' in page
    assert "Resume sending" not in page

    confirmed = console.post("/console/sending/stop", {"confirmed": "yes"}, follow=True)
    assert _stopped(owner)
    body = confirmed.content.decode()
    assert 'id="sending-banner"' in body
    assert "Sending is stopped by the operator" in body
    assert 'action="/console/sending/resume"' in body
    assert 'id="stop-all-sending"' not in body
    # Every page shows the banner while stopped.
    assert 'id="sending-banner"' in console.get("/console/mailboxes").content.decode()

    resumed = console.post("/console/sending/resume", {"confirmed": "yes"}, follow=True)
    assert not _stopped(owner)
    assert 'id="sending-banner"' not in resumed.content.decode()
    assert AuditEntry.objects.filter(action="account.sending_resumed").count() == 1


def test_a_card_says_the_stop_held_it(owner: Tenant, console: Client) -> None:
    held_email(owner.mailbox, subject="Held by the stop", hold_reason=STOPPED_HOLD_REASON)
    page = console.get("/console/").content.decode()
    assert f"Held because {STOPPED_HOLD_REASON}." in page


def test_approving_while_stopped_says_why_and_decides_nothing(
    owner: Tenant, console: Client
) -> None:
    email = held_email(owner.mailbox)
    console.post("/console/sending/stop", {"confirmed": "yes"})
    response = console.post(
        f"/console/queue/{email.pk}/decide",
        {"action": "approve", "version": card_version(console, email)},
        follow=True,
    )
    assert "Sending is stopped for this account" in response.content.decode()
    email.refresh_from_db()
    assert email.status == EmailStatus.PENDING_SEND_APPROVAL
