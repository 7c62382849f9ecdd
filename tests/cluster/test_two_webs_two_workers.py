"""Beyond one machine: two web processes and two Celery workers on PostgreSQL and Redis, as
the Procfile runs them. 300 emails go in through both web processes with client retries
(answers lost and resent to the other web process, requests fired twice at once), each
with an Idempotency-Key; every email is delivered exactly once."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from accounts.services import api_key_create
from mailboxes.models import Email, EmailStatus, Mailbox
from tests.conftest import make_tenant, start_and_join
from tests.embedded.conftest import free_port
from tests.outbound.conftest import _database_url, worker_broker_url

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
EMAILS = 300
CLIENTS = 8


class Process:
    """A subprocess in its own group, its output in a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()

    def wait(self) -> None:
        try:
            self.popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[dict[str, Any]]:
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("the cluster runs on PostgreSQL")
    broker = worker_broker_url()
    redis.Redis.from_url(broker).flushdb()
    outbox = tmp_path / "outbox"
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "REDIS_URL": broker,  # the shared cache: throttles, limits
        "CELERY_BROKER_URL": broker,
        "MULTIMAIL_OUTBOX_DIR": str(outbox),
        "MULTIMAIL_SIGNING_KEY_FILE": str(tmp_path / "signing-key.pem"),
        "DJANGO_SETTINGS_MODULE": "multimail.settings",
        "API_RATE_LIMIT_SEND_PER_MINUTE": "100000",
        "PYTHONPATH": str(ROOT),
    }
    quiet = {**env, "LOG_LEVEL": "WARNING"}  # the web processes: no line per request
    ports = [free_port(), free_port()]
    worker_metrics = free_port()
    processes = [
        Process(
            [
                sys.executable, "-m", "gunicorn", "multimail.asgi:application",
                "--worker-class", "multimail.asgi_worker.Worker",
                "--bind", f"127.0.0.1:{port}", "--workers", "1",
            ],
            quiet,
            tmp_path / f"web{index}.log",
        )
        for index, port in enumerate(ports)
    ] + [
        Process(
            [
                sys.executable, "-m", "celery", "-A", "multimail", "worker",
                "--pool", "solo", "--hostname", f"worker{index}@%h", "--loglevel", "INFO",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
            ],
            # The first worker serves its own metrics, as on a host without a web process.
            {**env, "METRICS_WORKER_ADDRESS": f"127.0.0.1:{worker_metrics}"} if index == 0 else env,
            tmp_path / f"worker{index}.log",
        )
        for index in range(2)
    ]  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        for process in processes[2:]:
            while "ready." not in process.log():
                assert process.popen.poll() is None, process.log()[-3000:]
                assert time.monotonic() < deadline, process.log()[-3000:]
                time.sleep(0.2)
        for port, process in zip(ports, processes, strict=False):
            while not _healthy(port):
                assert process.popen.poll() is None, process.log()[-3000:]
                assert time.monotonic() < deadline, process.log()[-3000:]
                time.sleep(0.2)
        yield {
            "ports": ports,
            "outbox": outbox,
            "processes": processes,
            "worker_metrics": worker_metrics,
        }
    finally:
        for process in processes:  # all at once, then wait: each stop takes a moment
            process.terminate()
        for process in processes:
            process.wait()
        redis.Redis.from_url(broker).flushdb()


def _healthy(port: int) -> bool:
    try:
        return _post_or_get(port, "GET", "/health")[0] == 200
    except OSError:
        return False


def _post_or_get(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def _both_at_once(
    until_answered: Any, index: int, ports: tuple[int, int], key: str
) -> dict[str, Any]:
    results: list[dict[str, Any]] = []

    def run(port: int) -> None:
        results.append(until_answered(index, port, key))

    start_and_join([threading.Thread(target=run, args=(port,)) for port in ports], timeout=120)
    assert len(results) == 2
    assert results[0] == results[1]
    return results[0]


def test_300_emails_through_two_webs_and_two_workers_are_each_delivered_once(
    cluster: dict[str, Any],
) -> None:
    tenant = make_tenant("cluster", plan="pro")
    # Past its warm-up, so the daily caps of a new mailbox do not apply.
    Mailbox.objects.filter(pk=tenant.mailbox.pk).update(
        created_at=timezone.now() - timedelta(days=30)
    )
    _, raw_key = api_key_create(account=tenant.account, name="cluster", scopes=["send", "read"])
    path = f"/v1/mailboxes/{tenant.mailbox.pk}/send"
    ports = cluster["ports"]
    answers: dict[int, dict[str, Any]] = {}
    codes: Counter[str] = Counter()
    lock = threading.Lock()

    def send(index: int, port: int, key: str) -> tuple[int, dict[str, str], bytes]:
        body = json.dumps(
            {"to": [f"r{index}@example.org"], "subject": f"Cluster {index}", "markdown": "Hi"}
        ).encode()
        headers = {
            "Authorization": f"Bearer {raw_key}",
            "Content-Type": "application/json",
            "Idempotency-Key": key,
        }
        return _post_or_get(port, "POST", path, body, headers)

    def until_answered(index: int, port: int, key: str) -> dict[str, Any]:
        """What a careful client does: retry the same request (same key) until it has an
        answer, on in-flight conflicts and server errors after a short pause."""
        for _ in range(200):
            status, _, raw = send(index, port, key)
            payload = json.loads(raw)
            with lock:
                codes[payload.get("error", {}).get("code", str(status))] += 1
            if status == 202:
                return dict(payload)
            assert status == 409 or status >= 500, (status, payload)
            time.sleep(0.05)
        raise AssertionError(f"email {index} never answered")

    def client(indexes: range) -> None:
        for index in indexes:
            key = str(uuid.uuid4())
            here, there = ports[index % 2], ports[(index + 1) % 2]
            style = index % 3
            if style == 0:  # the answer was lost: the client resends to the other server
                send(index, here, key)
                result = until_answered(index, there, key)
            elif style == 1:  # a retry fired before the first answer: both at once
                result = _both_at_once(until_answered, index, (here, there), key)
            else:  # answered at once, then the client retries anyway
                result = until_answered(index, here, key)
                assert until_answered(index, there, key) == result
            with lock:
                answers[index] = result

    per_client = EMAILS // CLIENTS + 1
    start_and_join(
        [
            threading.Thread(
                target=client, args=(range(n * per_client, min(EMAILS, (n + 1) * per_client)),)
            )
            for n in range(CLIENTS)
        ],
        timeout=300,
    )
    assert len(answers) == EMAILS
    assert len({answer["id"] for answer in answers.values()}) == EMAILS
    assert "duplicate_email" not in codes
    assert set(codes) <= {"202", "idempotency_conflict"}, codes

    emails = Email.objects.filter(mailbox=tenant.mailbox)
    assert emails.count() == EMAILS
    deadline = time.monotonic() + 120
    while emails.filter(status=EmailStatus.SENT).count() < EMAILS:
        assert time.monotonic() < deadline, Counter(emails.values_list("status", flat=True))
        time.sleep(0.5)
    # Delivered exactly once: one message per email in the mailer's outbox, none twice.
    subjects = Counter(
        message_from_bytes(path.read_bytes())["Subject"] for path in cluster["outbox"].glob("*.eml")
    )
    assert subjects == Counter({f"Cluster {index}": 1 for index in range(EMAILS)})
    # Both workers did part of the work (the client spread it over both web processes). An
    # email its mode lets leave is delivered by the task that scanned it.
    for process in cluster["processes"][2:]:
        assert "outbound_sent" in process.log()
    status, _, metrics = _post_or_get(cluster["worker_metrics"], "GET", "/metrics")
    assert status == 200
    assert (
        b'multimail_task_duration_seconds_count{state="SUCCESS",task="mailboxes.tasks.process_email"}'
        in metrics
    )
