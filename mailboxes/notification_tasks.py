"""Celery tasks for the operator's notifications: they take ids and call oversight's sender.

The notifications are oversight's (what to tell the operator, the approval link they
carry); sending them is mail work like any other, so the tasks live with the other mail
tasks and are enqueued through ``mailboxes.enqueue``.
"""

from __future__ import annotations

from celery import shared_task

from mailboxes import enqueue
from oversight.notifications import notification_attempt, notifications_due


@shared_task(name="mailboxes.notification_tasks.send_operator_notification", ignore_result=True)
def send_operator_notification(notification_id: str) -> None:
    notification_attempt(notification_id=notification_id)


@shared_task(
    name="mailboxes.notification_tasks.send_due_operator_notifications", ignore_result=True
)
def send_due_operator_notifications() -> int:
    """Beat: every notification whose retry is due, and any whose task was lost (worker
    crash, broker restart); the claim in the service keeps this from doubling up."""
    due = notifications_due()
    for notification_id in due:
        enqueue.notify_operator_now(notification_id)
    return len(due)
