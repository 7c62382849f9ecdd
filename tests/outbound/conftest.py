"""Outbound fixtures: a send helper that runs the pipeline, and a real Celery worker.

``celery_worker_process`` (module ``tests.outbound.conftest``) starts ``celery -A multimail
worker`` against Redis and the pytest database, for tests that need a real broker and a
worker that can be killed. Import it from another conftest to reuse it::

    from tests.outbound.conftest import celery_worker_process  # noqa: F401
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from mailboxes.models import Direction, Email, EmailStatus
from multimail.ids import new_id
from tests.conftest import Tenant
from tests.xdist_redis import index_below

ROOT = Path(__file__).resolve().parents[2]


def worker_broker_url() -> str:
    """The real workers' broker: the Redis index just below the suite's cache index (15 in
    make test, so 14), never the same, since the suite empties its cache index between tests,
    which would drop the worker's queued tasks. tests/xdist_redis.py keeps both indexes
    apart between xdist workers."""
    return index_below(settings.REDIS_URL or "redis://localhost:6379/15", 1)


def body(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "to": ["client@example.org"],
        "subject": "Quarterly numbers",
        "markdown": "Hello **there**, see [the report](https://example.org/report).",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def attachment(
    name: str = "notes.txt", content: bytes = b"hello", content_type: str = "text/plain"
) -> dict[str, str]:
    return {
        "name": name,
        "content_base64": base64.b64encode(content).decode(),
        "content_type": content_type,
    }


def sent_emails(owner: Tenant, count: int, **fields: Any) -> None:
    """Outbound mail written around the services (sent, unless ``fields`` say otherwise),
    as an import or an older release would have left it."""
    Email.objects.bulk_create(
        Email(
            account=owner.account,
            mailbox=owner.mailbox,
            direction=Direction.OUTBOUND,
            from_address=owner.mailbox.address,
            to=["x@example.org"],
            subject=f"old {index}",
            thread_id=new_id(),
            **{"status": EmailStatus.SENT, **fields},
        )
        for index in range(count)
    )


@pytest.fixture
def sender(api: Callable[..., APIClient]) -> APIClient:
    return api("send", "read")


@pytest.fixture
def send(
    sender: APIClient, owner: Tenant, django_capture_on_commit_callbacks: Any
) -> Callable[..., Any]:
    """POST a send (or a reply) and run what it enqueued, as the embedded default does."""

    def run(path: str | None = None, client: APIClient | None = None, **overrides: Any) -> Any:
        url = path or f"/v1/mailboxes/{owner.mailbox.pk}/send"
        payload = overrides.pop("payload", None) or body(**overrides)
        with django_capture_on_commit_callbacks(execute=True):
            return (client or sender).post(url, payload, format="json")

    return run


# --- a real worker -------------------------------------------------------------------------


@dataclass
class WorkerProcess:
    """A ``celery worker`` subprocess; ``start``/``kill`` may be called again (restart)."""

    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    def start(self, **extra_env: str) -> None:
        env = {**self.env, **extra_env}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "multimail", "worker",
                "--pool", "solo", "--concurrency", "1", "--loglevel", "INFO",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if b"ready." in self.log_path.read_bytes():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"celery worker did not start:\n{self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no cleanup, no ack, the way a crashed host loses a worker."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None
        # Forget the "ready." of this run, so the next start waits for its own.
        self.log_path.write_bytes(self.log_path.read_bytes().replace(b"ready.", b"ready,"))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None


def _database_url() -> str:
    database = settings.DATABASES["default"]
    user = database.get("USER") or "postgres"
    host = database.get("HOST") or "localhost"
    port = database.get("PORT") or 5432
    password = f":{database['PASSWORD']}" if database.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{host}:{port}/{database['NAME']}"


@pytest.fixture
def celery_worker_process(
    transactional_db: Any, tmp_path: Path, settings: Any
) -> Iterator[WorkerProcess]:
    """A real worker on Redis (``worker_broker_url``) and the test database.

    The test process enqueues through the same broker (CELERY_TASK_ALWAYS_EAGER is turned
    off for the test), and rows are committed (transactional_db) so the worker sees them.
    Mail from the worker lands as .eml files in ``tmp_path / "outbox"``.
    """
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("the worker test needs PostgreSQL")
    from multimail.celery import app

    broker = worker_broker_url()
    _purge(broker)
    previous = (app.conf.broker_url, app.conf.task_always_eager)
    app.conf.broker_url = broker
    app.conf.task_always_eager = False
    _reset_pool(app)
    settings.CELERY_TASK_ALWAYS_EAGER = False
    outbox = tmp_path / "outbox"
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": broker,
        "REDIS_URL": broker,
        "MULTIMAIL_OUTBOX_DIR": str(outbox),
        "DJANGO_SETTINGS_MODULE": "tests.outbound.worker_settings",
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
    }
    worker = WorkerProcess(env=env, log_path=tmp_path / "worker.log")
    try:
        yield worker
    finally:
        worker.stop()
        app.conf.broker_url, app.conf.task_always_eager = previous
        _purge(broker)
        _reset_pool(app)


def _reset_pool(app: Any) -> None:
    # Connections and producers are pooled for the broker URL of their time: drop both
    # pools so the next enqueue connects to the current one.
    from kombu import pools

    app.amqp._producer_pool = None
    app._pool = None
    pools.reset()


def _purge(broker: str) -> None:
    import redis

    redis.Redis.from_url(broker).flushdb()
