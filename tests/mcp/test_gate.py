"""The checks /mcp makes before the MCP transport sees a request, as Django makes them for
every other path: the host must be allowed, and https is required when configured."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from multimail.mcp.app import KeyRequired


def _through_gate(headers: dict[str, str], scheme: str = "http") -> tuple[int, dict, bytes]:
    reached: list[bool] = []

    async def transport(scope: Any, receive: Any, send: Any) -> None:
        reached.append(True)

    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/mcp",
        "scheme": scheme,
        "headers": [(name.encode(), value.encode()) for name, value in headers.items()],
    }
    anyio.run(KeyRequired(transport), scope, receive, send)
    assert not reached
    start, body = sent
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body["body"]


def test_a_host_outside_allowed_hosts_is_refused(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["mm.example"]
    status, headers, body = _through_gate({"host": "evil.example"})
    assert status == 400
    assert json.loads(body)["error"]["param"] == "Host"
    assert headers["x-request-id"].startswith("req_")


@pytest.mark.parametrize("proxy_says", [None, "http"])
def test_plain_http_is_redirected_to_https_when_required(
    settings: Any, proxy_says: str | None
) -> None:
    settings.ALLOWED_HOSTS = ["mm.example"]
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    headers = {"host": "mm.example"}
    if proxy_says:
        headers["x-forwarded-proto"] = proxy_says
    status, answer, _ = _through_gate(headers)
    assert status == 308
    assert answer["location"] == "https://mm.example/mcp"
