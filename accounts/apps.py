from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self) -> None:
        from accounts.approvals import register_admin_action
        from accounts.executors import EXECUTORS

        for action, executor in EXECUTORS.items():
            register_admin_action(action, executor)
