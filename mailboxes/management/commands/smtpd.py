"""``manage.py smtpd``: run the inbound SMTP listener until interrupted."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from mailboxes.smtp import smtp_controller
from multimail.shutdown import exit_without_teardown, wait_for_stop_signal


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
            controller.stop()
            self.stdout.write("SMTP listener stopped")
        exit_without_teardown()
