from __future__ import annotations

from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self) -> None:
        from billing.usage import api_call_counter
        from multimail.authentication import api_call_counter_set

        api_call_counter_set(api_call_counter)
