"""The one place that hands mail work to Celery.

Services call the ``*_after_commit`` functions from inside the transaction that made the
work visible: the task message is sent once that transaction commits, so a worker never
reads a row that is not there yet, and a rolled-back change enqueues nothing. The beat
sweeps, which run outside any transaction, call the ``*_now`` functions.

The task modules import the services, which import this module: the tasks are imported
inside each function, never when this module loads.
"""

from __future__ import annotations

from django.db import transaction


def process_email_after_commit(email_id: str) -> None:
    """Scan and route a stored ``pending_scan`` email.

    Robust: the email is committed already; if the broker is unreachable the error is
    logged and the sweep enqueues the task again, instead of failing a request whose email
    exists.
    """
    from mailboxes.tasks import process_email

    transaction.on_commit(lambda: process_email.delay(email_id), robust=True)


def deliver_email_after_commit(email_id: str, *, robust: bool = True) -> None:
    """Deliver a ``sending`` email. The task re-reads ``sending`` under a row lock, so even
    a redelivered task message sends the email once.

    ``robust`` as for ``process_email_after_commit``; a caller that passes False lets a
    broker error reach its own caller after the commit (the sweep still sends the email).
    """
    from mailboxes.tasks import deliver_email

    transaction.on_commit(lambda: deliver_email.delay(email_id), robust=robust)


def deliver_webhook_after_commit(delivery_id: str) -> None:
    """Attempt a webhook delivery (its row must be visible to the worker)."""
    from mailboxes.webhook_tasks import deliver_webhook

    transaction.on_commit(lambda: deliver_webhook.delay(delivery_id))


def process_email_now(email_id: str) -> None:
    from mailboxes.tasks import process_email

    process_email.delay(email_id)


def deliver_email_now(email_id: str) -> None:
    from mailboxes.tasks import deliver_email

    deliver_email.delay(email_id)


def deliver_email_later(email_id: str, *, countdown: float) -> None:
    """Another delivery attempt in ``countdown`` seconds (a worker's first attempt failed
    and the email stays ``sending``; the sweep covers a broker that is down)."""
    from mailboxes.tasks import deliver_email

    deliver_email.apply_async((email_id,), countdown=countdown)


def deliver_webhook_now(delivery_id: str) -> None:
    from mailboxes.webhook_tasks import deliver_webhook

    deliver_webhook.delay(delivery_id)


def tasks_run_in_process() -> bool:
    """Whether tasks run in this process when their transaction commits (no broker: the
    embedded default), rather than later in a worker. Read at each call: the Celery app's
    configuration, not Django's settings, is what decides."""
    from mailboxes.tasks import deliver_email

    return bool(deliver_email.app.conf.task_always_eager)


def notify_operator_after_commit(notification_id: str) -> None:
    """Send a stored operator notification (oversight.notifications). Robust, as for
    ``process_email_after_commit``: the notification is stored, and the beat sweep sends it
    if the broker is unreachable now."""
    from mailboxes.notification_tasks import send_operator_notification

    transaction.on_commit(lambda: send_operator_notification.delay(notification_id), robust=True)


def notify_operator_now(notification_id: str) -> None:
    from mailboxes.notification_tasks import send_operator_notification

    send_operator_notification.delay(notification_id)
