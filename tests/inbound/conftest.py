"""Builders for the inbound and reading tests: MIME messages and stored emails."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from django.utils import timezone

from mailboxes.models import Direction, Email, EmailStatus, Mailbox
from multimail.ids import new_id


def build_mime(
    *,
    to: str,
    sender: str = "Alice Sender <alice@example.org>",
    subject: str = "Hello there",
    text: str = "Hi agent,\n\nHow are you?\n",
    html: str | None = None,
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    attachments: list[tuple[str, str, bytes]] | None = None,
    headers: dict[str, str] | None = None,
    cc: str | None = None,
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    if cc:
        message["Cc"] = cc
    message["Subject"] = subject
    message["Date"] = format_datetime(timezone.now())
    message["Message-ID"] = message_id or make_msgid(domain="example.org")
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = references
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for filename, content_type, content in attachments or []:
        maintype, subtype = content_type.split("/", 1)
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()


def make_email(mailbox: Mailbox, **fields: Any) -> Email:
    values: dict[str, Any] = {
        "account": mailbox.account,
        "mailbox": mailbox,
        "direction": Direction.INBOUND,
        "status": EmailStatus.UNREAD,
        "from_address": "alice@example.org",
        "to": [mailbox.address],
        "subject": "Stored email",
        "markdown": "Body",
        "thread_id": new_id(),
        "message_id": make_msgid(domain="example.org"),
    }
    values.update(fields)
    return Email.objects.create(**values)
