"""An email's content version: one opaque string for everything an operator judges.

The version changes whenever any of these changes: the sender (address, and for outbound
mail the mailbox's display name, signature and AI disclosure, which go into the sent
message), To, Cc and Bcc (with the mailbox's automatic Cc and Bcc), Reply-To and the
other stored headers, the subject, the body (markdown, HTML and text), the attachments
and when it is sent (``send_at``, ``gate_timing``). A decision names the version the
operator saw, so an email edited since cannot be approved by it.

It is a keyed digest (HMAC with the server's secret): the agent may read the version of a
held email whose content it may not read yet, and must learn nothing about that content
from it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Protocol

from django.utils.crypto import salted_hmac

from mailboxes.models import Direction, Email
from mailboxes.selectors import attachment_list

_SALT = "multimail.email-version.v1"


class AttachmentMetadata(Protocol):
    """What the version reads of an attachment (never its bytes)."""

    @property
    def pk(self) -> Any: ...
    @property
    def filename(self) -> str: ...
    @property
    def content_type(self) -> str: ...
    @property
    def size(self) -> int: ...


def email_version(*, email: Email, attachments: Iterable[AttachmentMetadata]) -> str:
    """The version of ``email`` with these attachments (all of them, in any order).

    Attachment rows are never edited, only added or removed, so their id, name, type and
    size identify their content without reading the bytes.
    """
    judged: dict[str, Any] = {
        "direction": email.direction,
        "from": email.from_address,
        "to": list(email.to),
        "cc": list(email.cc),
        "bcc": list(email.bcc),
        "subject": email.subject,
        "markdown": email.markdown,
        "html": email.html,
        "text": email.text,
        "headers": email.headers,
        "send_at": email.send_at.isoformat() if email.send_at else None,
        "gate_timing": email.gate_timing,
        "attachments": sorted(
            [str(item.pk), item.filename, item.content_type, int(item.size)] for item in attachments
        ),
    }
    if email.direction == Direction.OUTBOUND:
        mailbox = email.mailbox
        judged["mailbox"] = [
            mailbox.display_name,
            mailbox.auto_cc,
            mailbox.auto_bcc,
            mailbox.signature_block,
            mailbox.ai_disclosure,
        ]
    canonical = json.dumps(judged, sort_keys=True, ensure_ascii=False, default=str)
    return salted_hmac(_SALT, canonical, algorithm="sha256").hexdigest()[:32]


def email_version_read(*, email: Email) -> str:
    """The version of one email, reading its attachments' metadata (one query, none for an
    email stored without attachments: they are only ever stored with their email)."""
    attachments = attachment_list(email=email) if email.has_attachments else ()
    return email_version(email=email, attachments=attachments)
