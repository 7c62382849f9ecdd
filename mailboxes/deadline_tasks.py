"""The beat job of the approval deadlines: it takes no arguments and calls oversight's
service, then sends the reminders it stored.

Its own module, imported by nothing but Celery (CELERY_IMPORTS): the service decides
through the lifecycle, which enqueues through ``mailboxes.enqueue``, which imports the
other task modules; a task module that enqueue never imports closes no cycle.
"""

from __future__ import annotations

from celery import shared_task

from mailboxes import enqueue
from oversight.expiry import approval_deadlines_run


@shared_task(name="mailboxes.deadline_tasks.approval_deadlines")
def approval_deadlines() -> dict[str, int]:
    """Reject held mail past the account's approval expiry, remind at half time."""
    run = approval_deadlines_run()
    for notification_id in run.reminder_ids:
        enqueue.notify_operator_now(notification_id)
    return {"expired": run.expired, "reminded": len(run.reminder_ids)}
