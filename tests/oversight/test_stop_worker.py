"""The stop switch with a real Celery worker on Redis: queued, scheduled and approved mail in
flight when the operator stops is held, not sent; a delivery already handing its message
to the provider finishes before the stop returns, and nothing leaves after it."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from mailboxes import tasks
from mailboxes.models import Email, EmailStatus
from oversight.policy import STOPPED_HOLD_REASON
from tests.conftest import Tenant, wait_for
from tests.outbound.conftest import (
    WorkerProcess,
    body,
    celery_worker_process,  # noqa: F401 (the fixture)
)

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

CODE = re.compile(r"^\s{4}([A-Z0-9]{3}-[A-Z0-9]{3}-[A-Z0-9]{3})$", re.MULTILINE)


def _email(email_id: str) -> Email:
    return Email.objects.get(pk=email_id)


def _sent_files(outbox: Path) -> list[Path]:
    """The agent's mail that left (not the operator's notifications about held mail)."""
    files = sorted(outbox.glob("*.eml")) if outbox.exists() else []
    return [path for path in files if b"X-MultiMail-Notification" not in path.read_bytes()]


def _send(client: APIClient, tenant: Tenant, **overrides: Any) -> str:
    response = client.post(
        f"/v1/mailboxes/{tenant.mailbox.pk}/send", body(**overrides), format="json"
    )
    assert response.status_code == 202, response.content
    return str(response.json()["id"])


def test_mail_in_flight_is_held_and_leaves_only_once_decided_after_resume(
    celery_worker_process: WorkerProcess,  # noqa: F811
    owner: Tenant,
    api: Callable[..., APIClient],
    tmp_path: Path,
) -> None:
    outbox = tmp_path / "outbox"
    sender, oversight = api("send", "read"), api("oversight")
    # The worker is down: each email's task waits in the broker when the stop comes.
    queued = _send(sender, owner, subject="Queued")
    soon = (timezone.now() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    scheduled = _send(sender, owner, subject="Scheduled", send_at=soon)
    # Approved and handed to delivery: "sending", its deliver task waiting in the broker.
    approved = Email.objects.create(
        account=owner.account,
        mailbox=owner.mailbox,
        direction="outbound",
        status=EmailStatus.SENDING,
        from_address=owner.mailbox.address,
        to=["client@example.org"],
        subject="Approved",
        markdown="Hi",
        thread_id="t-approved",
    )
    tasks.deliver_email.delay(approved.pk)

    assert oversight.post("/v1/oversight/stop", {}, format="json").status_code == 200
    celery_worker_process.start()
    wait_for(lambda: _email(queued).status == EmailStatus.PENDING_SEND_APPROVAL)
    wait_for(lambda: _email(approved.pk).status == EmailStatus.PENDING_SEND_APPROVAL)
    wait_for(lambda: _email(scheduled).status == EmailStatus.SCHEDULED)
    Email.objects.filter(pk=scheduled).update(send_at=timezone.now() - timedelta(seconds=1))
    tasks.send_due_scheduled.delay()
    wait_for(lambda: _email(scheduled).status == EmailStatus.PENDING_SEND_APPROVAL)
    for email_id in (queued, scheduled, approved.pk):
        assert _email(email_id).hold_reason == STOPPED_HOLD_REASON
    # A new send while stopped: accepted, held.
    later = _send(sender, owner, subject="Later")
    wait_for(lambda: _email(later).status == EmailStatus.PENDING_SEND_APPROVAL)
    time.sleep(1)
    assert _sent_files(outbox) == []

    mail.outbox.clear()
    assert oversight.post("/v1/oversight/resume", {}, format="json").status_code == 202
    code = CODE.search(mail.outbox[-1].body).group(1)  # type: ignore[union-attr]
    resumed = oversight.post("/v1/oversight/resume", {"approval_code": code}, format="json")
    assert resumed.json()["sending_stopped"] is False
    # Held until decided, then each leaves once.
    time.sleep(1)
    assert _sent_files(outbox) == []
    for email_id in (queued, scheduled, approved.pk):
        decided = oversight.post(
            "/v1/oversight/decide", {"email_id": email_id, "action": "approve"}, format="json"
        )
        assert decided.status_code == 200, decided.content
    for email_id in (queued, scheduled, approved.pk):
        wait_for(lambda email_id=email_id: _email(email_id).status == EmailStatus.SENT)
    assert len(_sent_files(outbox)) == 3
    assert _email(later).status == EmailStatus.PENDING_SEND_APPROVAL


def test_stop_waits_for_a_delivery_past_its_last_check_and_nothing_leaves_after(
    celery_worker_process: WorkerProcess,  # noqa: F811
    owner: Tenant,
    api: Callable[..., APIClient],
    tmp_path: Path,
) -> None:
    outbox = tmp_path / "outbox"
    celery_worker_process.start(SLOW_MAIL_SECONDS="4")
    sender, oversight = api("send", "read"), api("oversight")
    first = _send(sender, owner, subject="Already leaving")
    wait_for((tmp_path / "send-started").exists)  # inside the provider call

    answered: list[float] = []

    def stop() -> None:
        try:
            response = oversight.post("/v1/oversight/stop", {}, format="json")
            assert response.status_code == 200
            answered.append(time.monotonic())
        finally:
            connection.close()

    thread = threading.Thread(target=stop)
    thread.start()
    thread.join(timeout=1.5)
    # The delivery claimed the email before the provider call: the stop waits for it.
    assert thread.is_alive()
    thread.join(timeout=30)
    assert answered
    assert _email(first).status == EmailStatus.SENT  # committed before the stop returned
    assert len(_sent_files(outbox)) == 1

    second = _send(sender, owner, subject="After the stop")
    wait_for(lambda: _email(second).status == EmailStatus.PENDING_SEND_APPROVAL)
    assert _email(second).hold_reason == STOPPED_HOLD_REASON
    assert len(_sent_files(outbox)) == 1
