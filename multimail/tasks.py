"""Periodic housekeeping of the core's own records."""

from __future__ import annotations

from celery import shared_task

from multimail.cache import expired_cache_entries_purge
from multimail.idempotency import idempotency_records_purge


@shared_task(name="multimail.tasks.purge_expired_records", ignore_result=True)
def purge_expired_records() -> int:
    """Idempotency records past their 24 h window, and expired database-cache entries."""
    return idempotency_records_purge() + expired_cache_entries_purge()
