"""``manage.py smtpd``: run the inbound SMTP listener until interrupted."""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from mailboxes.smtp import smtp_controller
from multimail.shutdown import exit_without_teardown, wait_for_stop_signal

logger = logging.getLogger("multimail.smtp")

# Python 3.12's Server.wait_closed() waits for every connection to drop, and aiosmtpd's
# stop waits on it: one session that has not noticed its cancellation keeps the process up
# for good. A session still open at the stop never got its 250, so its sender retries.
STOP_GRACE_SECONDS = 3.0


class Command(BaseCommand):
    help = "Receive mail for this server's mailboxes over SMTP (MULTIMAIL_SMTP_HOST/PORT)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=settings.MULTIMAIL_SMTP_HOST)
        parser.add_argument("--port", type=int, default=settings.MULTIMAIL_SMTP_PORT)

    def handle(self, *args: Any, host: str, port: int, **options: Any) -> None:
        controller = smtp_controller(host=host, port=port)
        controller.start()
        self.stdout.write(f"SMTP listener on {host}:{port} (Ctrl+C to stop)")
        try:
            wait_for_stop_signal()
        finally:
            stopping = threading.Thread(target=controller.stop, name="smtp-stop", daemon=True)
            stopping.start()
            stopping.join(timeout=STOP_GRACE_SECONDS)
            if stopping.is_alive():
                logger.warning("smtp_stop_abandoned_sessions grace_seconds=%s", STOP_GRACE_SECONDS)
            self.stdout.write("SMTP listener stopped")
        exit_without_teardown()
