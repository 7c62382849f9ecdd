"""Periodic billing work run by beat."""

from __future__ import annotations

from celery import shared_task

from billing.services.enforcement import unpaid_accounts_enforce


@shared_task(name="billing.tasks.enforce_unpaid_accounts", ignore_result=True)
def enforce_unpaid_accounts() -> int:
    return unpaid_accounts_enforce()
