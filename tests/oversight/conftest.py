"""Oversight fixtures: held emails in either direction, and the approval link's token."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail
from django.test import TestCase

from mailboxes.lifecycle import email_hold
from mailboxes.models import Attachment, Direction, Email, EmailStatus, Mailbox
from multimail.ids import new_id

TOKEN_IN_LINK = re.compile(r"/v1/approve/([A-Za-z0-9_-]{40,})")
VERSION_FIELD = re.compile(r'name="version" value="([^"]*)"')


def make_email(
    mailbox: Mailbox,
    *,
    direction: str = Direction.OUTBOUND,
    status: str = EmailStatus.PENDING_SCAN,
    subject: str = "Quarterly numbers",
    **fields: Any,
) -> Email:
    outbound = direction == Direction.OUTBOUND
    defaults: dict[str, Any] = {
        "from_address": mailbox.address if outbound else "client@example.org",
        "to": ["client@example.org"] if outbound else [mailbox.address],
        "markdown": "Hello **there**",
        "text": "Hello there",
        "thread_id": new_id(),
    }
    defaults.update(fields)
    return Email.objects.create(
        account=mailbox.account,
        mailbox=mailbox,
        direction=direction,
        status=status,
        subject=subject,
        **defaults,
    )


def held(mailbox: Mailbox, **fields: Any) -> Email:
    """An email put in front of the operator the way every pipeline does it: outbound mail
    after its scan, inbound mail stored already held."""
    if fields.get("direction") == Direction.INBOUND:
        fields.setdefault("status", EmailStatus.PENDING_INBOUND_APPROVAL)
    email = make_email(mailbox, **fields)
    # Notifications go out on commit; the test transaction never commits, so run them now.
    with TestCase.captureOnCommitCallbacks(execute=True):
        email_hold(email=email)
    email.refresh_from_db()
    return email


def last_token() -> str:
    """The approval token from the newest operator notification in the test outbox."""
    for message in reversed(mail.outbox):
        found = TOKEN_IN_LINK.search(message.body)
        if found:
            return found.group(1)
    raise AssertionError("no approval link was emailed")


def shown_version(html: str) -> str:
    """The version a decision form decides on (its hidden field), "" when there is none."""
    found = VERSION_FIELD.search(html)
    return found.group(1) if found else ""


def hosted_decision(client: Any, token: str, **data: str) -> Any:
    """POST the hosted page's form as the operator's browser does: on the version the page
    showed when it was opened (a GET decides nothing)."""
    if "version" not in data:
        data["version"] = shown_version(client.get(f"/v1/approve/{token}").content.decode())
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(f"/v1/approve/{token}", data)


@pytest.fixture
def hold(db: Any) -> Callable[..., Email]:
    return held


@pytest.fixture
def attach() -> Callable[[Email, str], Attachment]:
    def build(email: Email, filename: str) -> Attachment:
        email.has_attachments = True
        email.save(update_fields=["has_attachments"])
        return Attachment.objects.create(
            email=email, filename=filename, content_type="text/plain", size=5, content=b"hello"
        )

    return build


def mime(*, to: str, subject: str = "Hello agent", attachment: bool = False) -> bytes:
    """A raw inbound message, as the provider webhook, SMTP or a local send hands it over."""
    from email.message import EmailMessage as MimeMessage
    from email.utils import make_msgid

    message = MimeMessage()
    message["From"] = "Client <client@example.org>"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="example.org")
    message.set_content("Secret body the agent must not see early.")
    if attachment:
        message.add_attachment(
            b"%PDF-1.4 fake", maintype="application", subtype="pdf", filename="secret.pdf"
        )
    return message.as_bytes()
