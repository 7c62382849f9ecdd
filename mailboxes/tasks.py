"""Outbound tasks. Each takes an email id and calls a service that is safe to run twice:
the services re-read the status under a lock and do nothing when the email moved on."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task
from celery.signals import worker_process_shutdown, worker_shutdown
from django.db import OperationalError
from psycopg.errors import DeadlockDetected, SerializationFailure

from mailboxes import enqueue
from mailboxes.models import Email, EmailStatus
from mailboxes.services.outbound import pipeline, provider
from mailboxes.services.outbound.provider import PermanentSendError, TransientSendError

logger = logging.getLogger("multimail.outbound")

MAX_SEND_RETRIES = 5


def _collided(error: OperationalError) -> bool:
    """A deadlock or serialization failure: the transaction lost a race and was rolled
    back whole, so running the task again is safe and will most likely succeed."""
    return isinstance(error.__cause__, DeadlockDetected | SerializationFailure)


def _retry_or_give_up(
    task: Task[Any, Any], email_id: str, status: EmailStatus, stage: str, error: Exception
) -> None:
    """An error nothing anticipated (a bug, an input no check caught): try again later, and
    after the last retry fail the email, so it never stays in ``status`` unseen."""
    logger.exception("outbound_task_error email=%s stage=%s", email_id, stage)
    if task.request.retries >= MAX_SEND_RETRIES:
        pipeline.email_send_failed(
            email_id=email_id,
            status=status,
            reason=f"internal_error: {stage} failed {MAX_SEND_RETRIES + 1} times "
            f"({type(error).__name__}); the server log has the details",
        )
        return
    raise task.retry(countdown=10 * 2**task.request.retries, exc=error) from error


# Queued at a lower priority than every other task (CELERY_TASK_ROUTES).
@shared_task(bind=True, name="mailboxes.tasks.process_email", max_retries=MAX_SEND_RETRIES)
def process_email(self: Task[Any, Any], email_id: str) -> None:
    # In a worker, the email the policy lets leave now is delivered by this same task: one
    # task per email, so a backlog of scans delivers as it goes rather than after its last
    # scan. In-process (no broker) the delivery runs at the commit, as it always did.
    deliver_here = not self.request.is_eager
    try:
        claimed = pipeline.email_process(email_id=email_id, deliver_here=deliver_here)
    except OperationalError as error:
        if not _collided(error):
            raise
        raise self.retry(countdown=1, exc=error) from error
    except Exception as error:  # see _retry_or_give_up
        _retry_or_give_up(self, email_id, EmailStatus.PENDING_SCAN, "preparing it", error)
        return
    if claimed is not None and deliver_here:
        _deliver_after_scan(claimed)


def _deliver_after_scan(email: Email) -> None:
    """The first delivery attempt, in the scan's task, of the email its scan claimed.
    Whatever fails but a refusal is handed to a deliver_email task, which retries (and
    gives up) as if it had been queued from the start; a worker lost here leaves the email
    ``sending`` and claimed, for the sweep once the claim's lease ran out."""
    email_id = email.pk
    try:
        pipeline.email_deliver_claimed(email=email)
    except PermanentSendError as error:
        pipeline.email_send_failed(email_id=email_id, reason=f"provider refused: {error}")
    except Exception as error:  # a transient provider error, a collision, a bug
        if isinstance(error, TransientSendError):
            pipeline.email_attempt_count(email_id=email_id)
        logger.warning("outbound_retry email=%s error=%r", email_id, error)
        enqueue.deliver_email_later(email_id, countdown=10)


@shared_task(bind=True, name="mailboxes.tasks.deliver_email", max_retries=MAX_SEND_RETRIES)
def deliver_email(self: Task[Any, Any], email_id: str) -> None:
    try:
        pipeline.email_deliver(email_id=email_id)
    except OperationalError as error:
        if not _collided(error):
            raise
        raise self.retry(countdown=1, exc=error) from error
    except PermanentSendError as error:
        pipeline.email_send_failed(email_id=email_id, reason=f"provider refused: {error}")
    except TransientSendError as error:
        pipeline.email_attempt_count(email_id=email_id)
        if self.request.retries >= MAX_SEND_RETRIES:
            pipeline.email_send_failed(
                email_id=email_id,
                reason=f"provider unavailable after {MAX_SEND_RETRIES + 1} attempts: {error}",
            )
            return
        # 10 s, 20 s, 40 s, ...: a provider outage gets minutes to recover.
        logger.warning("outbound_retry email=%s error=%s", email_id, error)
        raise self.retry(countdown=10 * 2**self.request.retries, exc=error) from error
    except Exception as error:  # see _retry_or_give_up
        _retry_or_give_up(self, email_id, EmailStatus.SENDING, "delivering it", error)


@worker_process_shutdown.connect
@worker_shutdown.connect
def _mail_connection_quit(**_: Any) -> None:
    """The worker's kept connection to the mail relay ends with QUIT, not a dropped
    socket (worker_process_shutdown in each prefork child, worker_shutdown for solo)."""
    provider.mailer_close()


@shared_task(name="mailboxes.tasks.send_due_scheduled")
def send_due_scheduled() -> int:
    due = pipeline.scheduled_due_ids()
    for email_id in due:
        pipeline.email_release_scheduled_or_fail(email_id=email_id)
    return len(due)


@shared_task(name="mailboxes.tasks.sweep_stuck_emails")
def sweep_stuck_emails() -> int:
    pipeline.stuck_emails_give_up()
    stuck = pipeline.stuck_email_ids()
    for email_id in stuck["pending_scan"]:
        enqueue.process_email_now(email_id)
    for email_id in stuck["sending"]:
        enqueue.deliver_email_now(email_id)
    count = sum(len(ids) for ids in stuck.values())
    if count:
        logger.warning("outbound_sweep requeued=%d", count)
    return count
