"""A real Celery worker on Redis: an accepted email is sent once, and killing the worker
in the middle of a send loses nothing and sends nothing twice."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from mailboxes import tasks
from mailboxes.models import Email, EmailStatus
from tests.conftest import Tenant, wait_for
from tests.outbound.conftest import WorkerProcess, body

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _status(email_id: str) -> str:
    return Email.objects.get(pk=email_id).status


def _sent_files(outbox: Path) -> list[Path]:
    return sorted(outbox.glob("*.eml")) if outbox.exists() else []


def test_accepted_email_is_sent_once(
    celery_worker_process: WorkerProcess,
    owner: Tenant,
    api: Callable[..., APIClient],
    tmp_path: Path,
) -> None:
    celery_worker_process.start()
    response = api("send").post(f"/v1/mailboxes/{owner.mailbox.pk}/send", body(), format="json")
    assert response.status_code == 202, response.content
    email_id = response.json()["id"]
    wait_for(lambda: _status(email_id) == EmailStatus.SENT)
    [sent] = _sent_files(tmp_path / "outbox")
    assert Email.objects.get(pk=email_id).message_id in sent.read_text()


def test_worker_killed_mid_send_sends_exactly_once(
    celery_worker_process: WorkerProcess,
    owner: Tenant,
    api: Callable[..., APIClient],
    tmp_path: Path,
) -> None:
    outbox = tmp_path / "outbox"
    celery_worker_process.start(SLOW_MAIL_SECONDS="30")
    response = api("send").post(f"/v1/mailboxes/{owner.mailbox.pk}/send", body(), format="json")
    email_id = response.json()["id"]
    wait_for((tmp_path / "send-started").exists)
    celery_worker_process.kill()  # SIGKILL while the mailer is inside send_messages

    email = Email.objects.get(pk=email_id)
    assert email.status == EmailStatus.SENDING  # the sent transaction never committed
    assert _sent_files(outbox) == []

    celery_worker_process.start(SLOW_MAIL_SECONDS="0")
    # Two ways back, both may fire: Redis hands the unacknowledged deliver task out again
    # after its visibility timeout, and the sweep re-enqueues mail stuck in "sending".
    Email.objects.filter(pk=email_id).update(status_changed_at=timezone.now() - timedelta(hours=1))
    tasks.sweep_stuck_emails.delay()
    wait_for(lambda: _status(email_id) == EmailStatus.SENT)
    assert len(_sent_files(outbox)) == 1

    # A late redelivery, another sweep or a duplicate task changes nothing.
    tasks.sweep_stuck_emails.delay()
    tasks.deliver_email.delay(email_id)
    time.sleep(8)
    assert len(_sent_files(outbox)) == 1
    assert _status(email_id) == EmailStatus.SENT
    assert Email.objects.get(pk=email_id).send_attempts == 1


def test_sweep_resumes_a_lost_task(
    celery_worker_process: WorkerProcess,
    owner: Tenant,
    api: Callable[..., APIClient],
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    # The worker is down when the email is accepted and its task is lost (broker flushed).
    response = api("send").post(f"/v1/mailboxes/{owner.mailbox.pk}/send", body(), format="json")
    email_id = response.json()["id"]
    import redis

    redis.Redis.from_url(celery_worker_process.env["CELERY_BROKER_URL"]).flushdb()
    assert _status(email_id) == EmailStatus.PENDING_SCAN
    celery_worker_process.start()
    Email.objects.filter(pk=email_id).update(status_changed_at=timezone.now() - timedelta(hours=1))
    tasks.sweep_stuck_emails.delay()
    wait_for(lambda: _status(email_id) == EmailStatus.SENT)
    assert len(_sent_files(tmp_path / "outbox")) == 1
