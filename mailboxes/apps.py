from __future__ import annotations

from django.apps import AppConfig


class MailboxesConfig(AppConfig):
    name = "mailboxes"

    def ready(self) -> None:
        from accounts.approvals import register_admin_action
        from mailboxes.services.webhooks import webhook_create_executor

        # The console's "approve" runs the same create the agent asked for.
        register_admin_action("webhook.create", webhook_create_executor)
