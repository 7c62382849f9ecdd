from __future__ import annotations

from django.apps import AppConfig


class MailboxesConfig(AppConfig):
    name = "mailboxes"

    def ready(self) -> None:
        from mailboxes.metrics import MailCollector
        from multimail.metrics import register_scrape_collector

        # The mail series of /metrics, read from the database at scrape time.
        register_scrape_collector(MailCollector())
