"""Fixtures for webhooks, domains and compliance: a real local HTTP receiver, fake resolvers."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from mailboxes.services import domains, netguard

PUBLIC_IP = "93.184.216.34"
TOLERANCE_SECONDS = 300


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1; ``statuses`` are answered in order (the last repeats)."""

    server: ThreadingHTTPServer
    statuses: list[int] = field(default_factory=lambda: [200])
    requests: list[Received] = field(default_factory=list)
    reply_body: dict[str, Any] = field(default_factory=dict)
    reply_headers: dict[str, str] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


def _start(receiver_ref: list[Receiver], port: int = 0) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            receiver = receiver_ref[0]
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            receiver.requests.append(
                Received(path=self.path, headers=dict(self.headers.items()), body=body)
            )
            index = min(len(receiver.requests) - 1, len(receiver.statuses) - 1)
            status = receiver.statuses[index]
            payload = json.dumps(receiver.reply_body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in receiver.reply_headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        do_POST = _answer
        do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def start_receiver() -> Iterator[Callable[..., Receiver]]:
    """``start_receiver(statuses=[500, 200], port=0)``: a running receiver, stopped after."""
    servers: list[ThreadingHTTPServer] = []

    def start(statuses: list[int] | None = None, port: int = 0) -> Receiver:
        ref: list[Receiver] = []
        server = _start(ref, port)
        receiver = Receiver(server=server, statuses=statuses or [200])
        ref.append(receiver)
        servers.append(server)
        return receiver

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver(start_receiver: Callable[..., Receiver]) -> Receiver:
    return start_receiver()


@pytest.fixture
def allow_private(settings: Any) -> None:
    """Only for tests that deliver to the local receiver."""
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True


@pytest.fixture
def fake_hosts(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Host name -> addresses, used instead of real DNS by the webhook guard."""
    table: dict[str, list[str]] = {"hooks.example.com": [PUBLIC_IP]}

    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise netguard.UnsafeTarget(f"The host {host} does not resolve.")
        return list(table[host])

    monkeypatch.setattr(netguard, "resolve_addresses", resolve)
    return table


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> dict[tuple[str, str], list[str] | Exception]:
    """(name, rdtype) -> answers (or an exception to raise), used by domain verification."""
    table: dict[tuple[str, str], list[str] | Exception] = {}

    def lookup(name: str, rdtype: str) -> list[str]:
        answer = table.get((name, rdtype), [])
        if isinstance(answer, Exception):
            raise answer
        return list(answer)

    monkeypatch.setattr(domains, "dns_lookup", lookup)
    return table


def verify_signature(header: str, body: bytes, secret: str, *, now: float | None = None) -> bool:
    """What a receiver does: parse t and v1 values, recompute, compare in constant time,
    and refuse timestamps outside the 5-minute tolerance (replays)."""
    parts = [item.split("=", 1) for item in header.split(",")]
    timestamp = next(value for key, value in parts if key == "t")
    candidates = [value for key, value in parts if key == "v1"]
    if abs((now or time.time()) - int(timestamp)) > TOLERANCE_SECONDS:
        return False
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)
