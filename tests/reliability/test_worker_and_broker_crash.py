"""Worker and broker crash together, mid-send: the sweep finishes the job.

What the outbound worker test leaves open: there the killed task comes back from the
broker. Here Redis (a private one, no persistence) dies too, so every queued and
unacknowledged task is gone — one email is half-way through ``sending``, the others
still ``pending_scan``. After both come back, beat's sweep re-enqueues them and each is
sent exactly once.
"""

from __future__ import annotations

import email as email_parser
import os
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from mailboxes.models import Email, EmailStatus
from mailboxes.tasks import sweep_stuck_emails
from tests.conftest import Tenant, wait_for
from tests.outbound.conftest import WorkerProcess
from tests.reliability.conftest import RedisServer

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]


def _database_url() -> str:
    db = django_settings.DATABASES["default"]
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return (
        f"postgres://{db.get('USER') or 'postgres'}{password}@{db.get('HOST') or 'localhost'}:"
        f"{db.get('PORT') or 5432}/{db['NAME']}"
    )


@pytest.fixture
def worker(redis_backed: RedisServer, tmp_path: Path) -> Any:
    if django_settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("the worker test needs PostgreSQL")
    process = WorkerProcess(
        env={
            **os.environ,
            "DATABASE_URL": _database_url(),
            "CELERY_BROKER_URL": redis_backed.url(1),
            "REDIS_URL": redis_backed.url(0),
            "MULTIMAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
            # The outbox mailer, made slow on demand so the kill lands inside a send.
            "DJANGO_SETTINGS_MODULE": "tests.outbound.worker_settings",
            "PYTHONPATH": str(ROOT),
        },
        log_path=tmp_path / "worker.log",
    )
    yield process
    process.stop()


def test_worker_and_redis_crash_mid_send_then_sweep_sends_each_once(
    worker: WorkerProcess,
    redis_backed: RedisServer,
    owner: Tenant,
    api: Callable[..., Any],
    tmp_path: Path,
) -> None:
    outbox = tmp_path / "outbox"
    client = api("send")
    worker.start(SLOW_MAIL_SECONDS="30")
    ids = []
    for n in range(3):
        response = client.post(
            f"/v1/mailboxes/{owner.mailbox.pk}/send",
            {"to": [f"lead{n}@example.org"], "subject": f"Offer {n}", "markdown": "Terms."},
            format="json",
        )
        assert response.status_code == 202, response.content
        ids.append(response.json()["id"])

    wait_for((tmp_path / "send-started").exists)
    worker.kill()  # SIGKILL inside the mailer's send_messages
    redis_backed.stop()  # ...and the broker goes with everything queued or unacked

    statuses = dict(Email.objects.filter(pk__in=ids).values_list("pk", "status"))
    assert EmailStatus.SENDING in statuses.values(), statuses
    assert set(statuses.values()) <= {EmailStatus.SENDING, EmailStatus.PENDING_SCAN}
    assert not outbox.exists() or not list(outbox.glob("*.eml"))

    redis_backed.start()  # empty: the tasks are gone for good
    worker.start(SLOW_MAIL_SECONDS="0")
    time.sleep(1)
    assert set(Email.objects.filter(pk__in=ids).values_list("status", flat=True)) <= {
        EmailStatus.SENDING,
        EmailStatus.PENDING_SCAN,
    }, "something ran without being re-enqueued"

    # Beat's sweep, once they have been stuck past its threshold; it enqueues through the
    # (restarted) broker and the worker does the rest.
    Email.objects.filter(pk__in=ids).update(status_changed_at=timezone.now() - timedelta(hours=1))
    assert sweep_stuck_emails() == 3
    wait_for(
        lambda: (
            set(Email.objects.filter(pk__in=ids).values_list("status", flat=True))
            == {EmailStatus.SENT}
        )
    )
    # A second sweep (or a duplicate beat tick) finds nothing.
    assert sweep_stuck_emails() == 0
    time.sleep(1)

    sent = [email_parser.message_from_bytes(path.read_bytes()) for path in outbox.glob("*.eml")]
    assert sorted(message["To"] for message in sent) == [
        "lead0@example.org",
        "lead1@example.org",
        "lead2@example.org",
    ]
    message_ids = {message["Message-ID"] for message in sent}
    assert message_ids == set(Email.objects.filter(pk__in=ids).values_list("message_id", flat=True))
