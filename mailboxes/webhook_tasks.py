"""Celery tasks for outgoing webhooks and the event stream: they take ids and call the
services."""

from __future__ import annotations

from celery import shared_task

from mailboxes import enqueue
from mailboxes.services.event_stream import events_purge
from mailboxes.services.webhooks import webhook_deliveries_due, webhook_delivery_attempt


@shared_task(name="mailboxes.webhook_tasks.deliver_webhook", ignore_result=True)
def deliver_webhook(delivery_id: str) -> None:
    webhook_delivery_attempt(delivery_id=delivery_id)


@shared_task(name="mailboxes.webhook_tasks.deliver_due_webhooks", ignore_result=True)
def deliver_due_webhooks() -> int:
    """Beat: every pending delivery whose time has come, including ones whose task was lost
    (worker crash, broker restart); the claim in the service keeps this from doubling up."""
    due = webhook_deliveries_due()
    for delivery_id in due:
        enqueue.deliver_webhook_now(delivery_id)
    return len(due)


@shared_task(name="mailboxes.webhook_tasks.purge_old_events", ignore_result=True)
def purge_old_events() -> int:
    """Beat: the live stream's events past their retention window."""
    return events_purge()
