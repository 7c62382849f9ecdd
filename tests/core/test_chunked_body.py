"""A JSON body sent with Transfer-Encoding: chunked is read whole, through real gunicorn.

Hypothesis cuts the same send into chunks at generated boundaries (one byte each, uneven,
a single chunk); every cut delivers the email. A chunked body over the limit answers
payload_too_large like one with a Content-Length.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from mailboxes.models import Email
from multimail.ids import new_id
from tests.conftest import key_for, make_tenant
from tests.embedded.conftest import free_port
from tests.outbound.conftest import _database_url

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 64 * 1024


# How production serves the app (ASGI, uvicorn workers) and the WSGI entry point kept for
# WSGI servers: chunked bodies must work through both.
SERVED_AS = {
    "asgi": ["multimail.asgi:application", "--worker-class", "multimail.asgi_worker.Worker"],
    "wsgi": ["multimail.wsgi:application", "--threads", "2"],
}


@pytest.fixture(scope="module", params=sorted(SERVED_AS))
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, django_db_setup: Any
) -> Iterator[int]:
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("gunicorn shares the test database on PostgreSQL")
    port = free_port()
    var = tmp_path_factory.mktemp("chunked")
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "MULTIMAIL_OUTBOX_DIR": str(var / "outbox"),
        "MULTIMAIL_SIGNING_KEY_FILE": str(var / "signing-key.pem"),
        "DJANGO_SETTINGS_MODULE": "multimail.settings",
        "DATA_UPLOAD_MAX_MEMORY_SIZE": str(LIMIT),
        "API_RATE_LIMIT_SEND_PER_MINUTE": "100000",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("CELERY_BROKER_URL", None)
    log = (var / "gunicorn.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", *SERVED_AS[request.param],
         "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/health")
                connection.getresponse().read()
                break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail((var / "gunicorn.log").read_text())
        yield port
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def post_chunked(port: int, path: str, key: str, chunks: list[bytes]) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.putrequest("POST", path)
    connection.putheader("Authorization", f"Bearer {key}")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    for chunk in chunks:
        connection.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
    connection.send(b"0\r\n\r\n")
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, json.loads(body)


def cut(data: bytes, points: list[int]) -> list[bytes]:
    edges = sorted({0, len(data), *(point % (len(data) + 1) for point in points)})
    return [data[start:end] for start, end in itertools.pairwise(edges)]


@pytest.fixture
def tenant(transactional_db: Any) -> dict[str, str]:
    owner = make_tenant(f"chunk{new_id()[-6:].lower()}")
    _, key = key_for(owner.account, "send", "read")
    return {"key": key, "mailbox": owner.mailbox.pk}


@hypothesis_settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(points=st.lists(st.integers(min_value=0, max_value=10_000), max_size=40))
def test_a_chunked_send_is_read_whole(
    server: int, tenant: dict[str, str], points: list[int]
) -> None:
    subject = f"Chunked {new_id()}"
    data = json.dumps(
        {"to": ["client@example.org"], "subject": subject, "markdown": "Hello " * 50}
    ).encode()
    status, body = post_chunked(
        server, f"/v1/mailboxes/{tenant['mailbox']}/send", tenant["key"], cut(data, points)
    )
    assert status == 202, body
    assert Email.objects.get(pk=body["id"]).subject == subject


def test_one_byte_chunks(server: int, tenant: dict[str, str]) -> None:
    data = json.dumps(
        {"to": ["client@example.org"], "subject": f"Bytes {new_id()}", "markdown": "Hi"}
    ).encode()
    chunks = [data[index : index + 1] for index in range(len(data))]
    status, body = post_chunked(
        server, f"/v1/mailboxes/{tenant['mailbox']}/send", tenant["key"], chunks
    )
    assert status == 202, body


def test_a_chunked_body_over_the_limit_is_413(server: int, tenant: dict[str, str]) -> None:
    data = json.dumps(
        {"to": ["client@example.org"], "subject": "Big", "markdown": "x" * (LIMIT * 2)}
    ).encode()
    status, body = post_chunked(
        server, f"/v1/mailboxes/{tenant['mailbox']}/send", tenant["key"], cut(data, [4096, 70000])
    )
    assert status == 413, body
    assert body["error"]["code"] == "payload_too_large"
    assert body["error"]["limit_bytes"] == LIMIT
