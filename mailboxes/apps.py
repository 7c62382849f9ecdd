from __future__ import annotations

from django.apps import AppConfig


class MailboxesConfig(AppConfig):
    name = "mailboxes"

    def ready(self) -> None:
        from accounts.approvals import register_admin_action
        from mailboxes.services.mailboxes import (
            mailbox_create_from_approval,
            mailbox_update_from_approval,
        )
        from mailboxes.services.webhooks import webhook_create_executor

        # What the console runs when the operator approves an agent's pending request.
        register_admin_action("mailbox.create", mailbox_create_from_approval)
        register_admin_action("mailbox.update", mailbox_update_from_approval)
        register_admin_action("webhook.create", webhook_create_executor)

        from mailboxes.metrics import MailCollector
        from multimail.metrics import register_scrape_collector

        register_scrape_collector(MailCollector())
