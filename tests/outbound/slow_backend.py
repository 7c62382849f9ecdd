"""The outbox backend, slowed down: SLOW_MAIL_SECONDS before each message is written, with a
marker file saying a send has started (the test kills the worker then)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from django.core.mail.message import EmailMessage

from mailboxes.backends import OutboxFileBackend


class SlowOutboxBackend(OutboxFileBackend):
    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory.parent / "send-started").write_text(str(os.getpid()))
        time.sleep(float(os.environ.get("SLOW_MAIL_SECONDS", "0")))
        return super().send_messages(email_messages)
