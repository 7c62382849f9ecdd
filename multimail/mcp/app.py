"""The ASGI app of ``/mcp``: the MCP SDK's Streamable HTTP transport behind the API's key
authentication.

Every request to ``/mcp`` must carry a valid key (``Authorization: Bearer mm_live_...``),
checked by the API's own authentication class before the SDK sees the request; without one
the answer is the API's 401 envelope with ``WWW-Authenticate``, never a session without
tools. The transport is stateless (each POST is answered on its own), so any web process
may answer any request of a client.
"""

from __future__ import annotations

import json
from typing import Any

import anyio.to_thread
from django.conf import settings
from django.db import connections
from django.http import HttpRequest
from django.http.request import split_domain_port, validate_host
from mcp.server.transport_security import TransportSecuritySettings
from rest_framework.request import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from multimail.authentication import ApiKeyAuthentication
from multimail.errors import ApiError
from multimail.exceptions import envelope
from multimail.ids import new_id
from multimail.mcp import tools  # noqa: F401 - registers the tools on the server
from multimail.mcp.server import server

MCP_PATH = "/mcp"


def _authentication_error(headers: dict[str, str]) -> ApiError | None:
    """The API's verdict on the request's credentials: None when a valid key was sent."""
    django_request = HttpRequest()
    for name in ("authorization", "x-api-key"):
        if name in headers:
            django_request.META["HTTP_" + name.upper().replace("-", "_")] = headers[name]
    try:
        try:
            principal = ApiKeyAuthentication().authenticate(Request(django_request))
        finally:
            connections.close_all()
    except ApiError as error:
        return error
    if principal is None:
        return ApiError(
            "authentication_required",
            "The MCP endpoint needs an API key: send Authorization: Bearer mm_live_YOUR_KEY.",
        )
    return None


def _is_secure(scope: Scope, headers: dict[str, str]) -> bool:
    """Django's ``request.is_secure()``: https, or the proxy's header when it is trusted."""
    if scope.get("scheme") == "https":
        return True
    proxy_header = settings.SECURE_PROXY_SSL_HEADER
    if proxy_header is None:
        return False
    name, value = proxy_header
    sent = headers.get(name.removeprefix("HTTP_").replace("_", "-").lower(), "")
    return sent.split(",")[0].strip() == value


async def _answer(send: Send, status: int, body: dict[str, Any], headers: list[Any]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class KeyRequired:
    """Lets a request through to the MCP transport only with a valid API key."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {
            key.decode("latin-1").lower(): value.decode("latin-1")
            for key, value in scope["headers"]
        }
        request_id = f"req_{new_id()}"
        id_header = (b"x-request-id", request_id.encode())
        # The host check Django applies to every other path (ALLOWED_HOSTS).
        domain, _ = split_domain_port(headers.get("host", ""))
        if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
            bad_host = ApiError("invalid_parameter", "This host is not served here.", param="Host")
            await _answer(send, 400, envelope(bad_host, request_id), [id_header])
            return
        if settings.SECURE_SSL_REDIRECT and not _is_secure(scope, headers):
            # What Django's SecurityMiddleware does for every other path; 308 keeps the
            # POST, and the SDK's client follows it (same host, http to https).
            location = f"https://{headers.get('host', domain)}{MCP_PATH}".encode("latin-1")
            await _answer(send, 308, {}, [id_header, (b"location", location)])
            return
        error: ApiError | None = await anyio.to_thread.run_sync(_authentication_error, headers)
        if error is not None:
            await _answer(
                send,
                error.status,
                envelope(error, request_id),
                [id_header, (b"www-authenticate", b'Bearer realm="mcp"')],
            )
            return
        # The tools' API calls carry this request id too (their log lines share it), and
        # the answer names it, as every API answer does.
        kept = [(key, value) for key, value in scope["headers"] if key.lower() != b"x-request-id"]
        scope = {**scope, "headers": [*kept, id_header]}

        async def with_request_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), id_header]}
            await send(message)

        await self.app(scope, receive, with_request_id)


def mcp_app() -> ASGIApp:
    """The Starlette app of the transport; its lifespan runs the SDK's session manager."""
    return server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=True,
        json_response=True,
        # Hosts are checked above against ALLOWED_HOSTS, for every deployment's names.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
