from __future__ import annotations

from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self) -> None:
        from accounts.approvals import register_admin_action
        from billing.services.checkout import cancel_executor

        # The console approves an agent's "cancel the subscription" through this.
        register_admin_action("billing.cancel", cancel_executor)
