"""Real services for the fault tests: a private Redis we may kill, and a fake mail provider.

The shared Redis on 6379 is used by other people and is never stopped; every test that
breaks Redis gets its own ``redis-server`` on a free loopback port.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core.cache import caches

from multimail.celery import app as celery_app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RedisServer:
    """A throwaway ``redis-server`` without persistence: a restart loses everything in it."""

    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock,
            ):
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not come up on port {self.port}")

    def stop(self) -> None:
        """Kill it outright, like a crash: no graceful shutdown, nothing saved."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def point_celery_at(broker_url: str | None, *, eager: bool) -> None:
    """Re-point the already configured Celery app (settings are read once, at import)."""
    celery_app.conf.broker_url = broker_url
    celery_app.conf.task_always_eager = eager
    # Drop pooled connections to the previous broker.
    celery_app._pool = None
    with contextlib.suppress(AttributeError, KeyError):
        celery_app.__dict__["amqp"]._producer_pool = None


@pytest.fixture
def redis_backed(settings: Any, private_redis: RedisServer) -> Iterator[RedisServer]:
    """Cache and broker on the private Redis, tasks queued (not run in-process)."""
    settings.REDIS_URL = private_redis.url(0)
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": private_redis.url(0),
            # Fail fast while Redis is down instead of hanging the request.
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    settings.CELERY_BROKER_URL = private_redis.url(1)
    previous = (celery_app.conf.broker_url, celery_app.conf.task_always_eager)
    retry_policy = celery_app.conf.task_publish_retry_policy
    # One quick publish retry: a dead broker answers in well under a second.
    celery_app.conf.task_publish_retry_policy = {
        "max_retries": 1,
        "interval_start": 0,
        "interval_step": 0.1,
        "interval_max": 0.1,
    }
    point_celery_at(private_redis.url(1), eager=False)
    try:
        yield private_redis
    finally:
        celery_app.conf.task_publish_retry_policy = retry_policy
        point_celery_at(previous[0], eager=previous[1])
        caches["default"].close()


@dataclass
class FakeProvider:
    """A Postmark look-alike: answers ``/email`` with the scripted statuses, then 200."""

    statuses: list[int]
    requests: list[dict[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def accepted(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["status"] == 200]


@pytest.fixture
def fake_postmark() -> Iterator[FakeProvider]:
    provider = FakeProvider(statuses=[])
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                status = provider.statuses.pop(0) if provider.statuses else 200
                payload = json.loads(body or b"{}")
                provider.requests.append({"path": self.path, "status": status, "json": payload})
                number = len(provider.requests)
            if status == 200:
                answer = {
                    "To": payload.get("To", ""),
                    "SubmittedAt": "2026-11-22T12:00:00Z",
                    "MessageID": f"00000000-0000-0000-0000-{number:012d}",
                    "ErrorCode": 0,
                    "Message": "OK",
                }
            else:
                answer = {"ErrorCode": 0, "Message": "Internal Server Error"}
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    provider.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=provider.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        provider.server.shutdown()
        provider.server.server_close()


@dataclass
class WsgiResponse:
    status_code: int
    headers: dict[str, str]
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content)

    def __getitem__(self, name: str) -> str:
        return self.headers[name.lower()]


def wsgi_call(
    method: str, path: str, *, key: str | None = None, body: Any = None, **headers: str
) -> WsgiResponse:
    """One request through the real WSGI handler, request signals included.

    The test client disconnects ``close_old_connections`` from ``request_started``, which
    hides exactly the connection recycling a database fault test is about.
    """
    from django.core.handlers.wsgi import WSGIHandler
    from django.test.client import RequestFactory

    extra = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
    if key is not None:
        extra["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    data = json.dumps(body) if body is not None else ""
    request = RequestFactory().generic(method, path, data, content_type="application/json", **extra)
    captured: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]], *_: Any) -> None:
        captured["status"] = int(status.split()[0])
        captured["headers"] = {name.lower(): value for name, value in response_headers}

    result = WSGIHandler()(request.environ, start_response)
    try:
        content = b"".join(result)
    finally:
        result.close()  # fires request_finished, as a real server does
    return WsgiResponse(captured["status"], captured["headers"], content)


@pytest.fixture
def broker_only(settings: Any, private_redis: RedisServer) -> Iterator[RedisServer]:
    """The broker alone on the private Redis; the cache stays where the suite has it."""
    settings.CELERY_BROKER_URL = private_redis.url(0)
    previous = (celery_app.conf.broker_url, celery_app.conf.task_always_eager)
    retry_policy = celery_app.conf.task_publish_retry_policy
    celery_app.conf.task_publish_retry_policy = {
        "max_retries": 1,
        "interval_start": 0,
        "interval_step": 0.1,
        "interval_max": 0.1,
    }
    point_celery_at(private_redis.url(0), eager=False)
    try:
        yield private_redis
    finally:
        celery_app.conf.task_publish_retry_policy = retry_policy
        point_celery_at(previous[0], eager=previous[1])
