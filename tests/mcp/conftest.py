"""A live web process as production runs it (gunicorn with a uvicorn worker, the ASGI app)
on the pytest database, and an MCP client session from the official SDK over real HTTP."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp.client import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.embedded.conftest import free_port
from tests.outbound.conftest import _database_url

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def live_server_url(transactional_db: Any, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {
        **{key: value for key, value in os.environ.items() if key != "CELERY_BROKER_URL"},
        "DATABASE_URL": _database_url(),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "MULTIMAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
        "MULTIMAIL_SIGNING_KEY_FILE": str(tmp_path / "signing-key.pem"),
        "API_RATE_LIMIT_SEND_PER_MINUTE": "100000",
        "DJANGO_SETTINGS_MODULE": "multimail.settings",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    log_path = tmp_path / "web.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "gunicorn", "multimail.asgi:application",
                "--worker-class", "multimail.asgi_worker.Worker",
                "--bind", f"127.0.0.1:{port}", "--workers", "1",
            ],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not _healthy(port):
            assert process.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        # Shown with a failing test's output: what the web process logged.
        print(log_path.read_text(errors="replace")[-6000:])


def _healthy(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/health")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


@asynccontextmanager
async def mcp_session(base_url: str, key: str) -> AsyncIterator[ClientSession]:
    """The SDK's own Streamable HTTP client and session, authenticated with the key."""
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(150)) as http,
        streamable_http_client(f"{base_url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


@pytest.fixture
def live_outbox(tmp_path: Path) -> Path:
    """Where the live server writes outgoing mail, operator notifications included."""
    return tmp_path / "outbox"
