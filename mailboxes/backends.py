"""The embedded mail backend: every outgoing message becomes an .eml file in the outbox."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.message import EmailMessage

from multimail.ids import new_id


class OutboxFileBackend(BaseEmailBackend):
    """Writes one RFC 5322 file per message under MULTIMAIL_OUTBOX_DIR.

    File names start with a time-ordered id, so a directory listing reads in send order.
    The file is written under a temporary name and renamed, so readers never see half of it.
    """

    def __init__(self, *, directory: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.directory = Path(directory or settings.MULTIMAIL_OUTBOX_DIR)

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        self.directory.mkdir(parents=True, exist_ok=True)
        sent = 0
        for message in email_messages:
            name = new_id()
            temporary = self.directory / f".{name}.tmp"
            temporary.write_bytes(message.message().as_bytes())
            temporary.rename(self.directory / f"{name}.eml")
            sent += 1
        return sent
