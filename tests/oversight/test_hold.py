"""email_hold: the held status, the approval link, the operator's email and the event."""

from __future__ import annotations

from django.core import mail
from django.test import TestCase

from mailboxes.lifecycle import email_hold
from mailboxes.models import Direction, EmailStatus, WebhookDelivery, WebhookEvent
from oversight.models import ApprovalLink
from oversight.selectors import token_hash
from tests.conftest import Tenant
from tests.oversight.conftest import held, last_token, make_email


def test_outbound_hold_notifies_operator_with_full_content_and_link(owner: Tenant, attach) -> None:
    owner.mailbox.oversight_mode = "gated_send"
    owner.mailbox.oversight_webhook_url = "https://hooks.example/oversight"
    owner.mailbox.save()
    email = make_email(
        owner.mailbox,
        cc=["boss@example.org"],
        subject="Contract draft",
        text="Please sign the attached contract.",
    )
    attach(email, "contract.pdf")
    with TestCase.captureOnCommitCallbacks(execute=True):
        email_hold(email=email)

    email.refresh_from_db()
    assert email.status == EmailStatus.PENDING_SEND_APPROVAL
    [message] = mail.outbox
    assert message.to == [owner.account.oversight_email]
    assert "Contract draft" in message.subject
    for expected in (
        owner.mailbox.address,
        "client@example.org",
        "boss@example.org",
        "Contract draft",
        "Please sign the attached contract.",
        "contract.pdf",
        "http://127.0.0.1:8000/v1/approve/",
    ):
        assert expected in message.body, expected
    token = last_token()
    link = ApprovalLink.objects.get(email=email)
    assert link.token_hash == token_hash(token)  # only the digest is stored
    assert token not in link.token_hash
    assert (link.expires_at - link.created_at).days == 7

    event = WebhookDelivery.objects.get(event_type=WebhookEvent.OVERSIGHT_PENDING)
    assert event.url == "https://hooks.example/oversight"
    assert event.payload["data"]["email_id"] == email.pk
    assert event.payload["data"]["direction"] == Direction.OUTBOUND
    # The agent may own that webhook: it must never carry the approval link.
    assert token not in str(event.payload)
    assert "approve" not in str(event.payload["data"])


def test_inbound_hold_uses_inbound_status(owner: Tenant) -> None:
    email = held(owner.mailbox, direction=Direction.INBOUND)
    assert email.status == EmailStatus.PENDING_INBOUND_APPROVAL
    assert "The agent cannot read it until you approve it" in mail.outbox[0].body


def test_holding_twice_announces_once(owner: Tenant) -> None:
    email = held(owner.mailbox)
    with TestCase.captureOnCommitCallbacks(execute=True):
        email_hold(email=email)
    assert len(mail.outbox) == 1
    assert ApprovalLink.objects.filter(email=email).count() == 1
    assert WebhookDelivery.objects.filter(event_type=WebhookEvent.OVERSIGHT_PENDING).count() == 0


def test_an_email_created_already_held_is_still_announced(owner: Tenant) -> None:
    """The inbound pipeline stores the email in its held status, then calls email_hold."""
    email = held(owner.mailbox, direction=Direction.INBOUND, status="pending_inbound_approval")
    assert email.status == EmailStatus.PENDING_INBOUND_APPROVAL
    assert len(mail.outbox) == 1


def test_a_rejected_email_is_not_held_again(owner: Tenant) -> None:
    email = make_email(owner.mailbox, status=EmailStatus.REJECTED)
    email_hold(email=email)
    email.refresh_from_db()
    assert email.status == EmailStatus.REJECTED
    assert not ApprovalLink.objects.exists()
