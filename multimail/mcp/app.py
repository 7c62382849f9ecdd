"""The ASGI app of ``/mcp``: the MCP SDK's Streamable HTTP transport behind the API's key
authentication.

Every request to ``/mcp`` must carry a valid key (``Authorization: Bearer mm_live_...``),
checked by the API's own authentication class before the SDK sees the request; without one
the answer is the API's 401 envelope with ``WWW-Authenticate``, never a session without
tools. The transport is stateless (each POST is answered on its own), so any web process
may answer any request of a client.
"""

from __future__ import annotations

import anyio.to_thread
from django.conf import settings
from django.db import connections
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from multimail.asgi_auth import (
    host_allowed,
    is_secure,
    json_answer,
    key_principal,
    request_headers,
)
from multimail.errors import ApiError
from multimail.exceptions import envelope
from multimail.ids import new_id
from multimail.mcp import tools  # noqa: F401 - registers the tools on the server
from multimail.mcp.server import server

MCP_PATH = "/mcp"


def _authentication_error(headers: dict[str, str]) -> ApiError | None:
    """The API's verdict on the request's credentials: None when a valid key was sent."""
    try:
        key_principal(
            headers,
            missing="The MCP endpoint needs an API key: send Authorization: Bearer "
            "mm_live_YOUR_KEY.",
        )
    except ApiError as error:
        return error
    finally:
        connections.close_all()
    return None


class KeyRequired:
    """Lets a request through to the MCP transport only with a valid API key."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = request_headers(scope)
        request_id = f"req_{new_id()}"
        id_header = (b"x-request-id", request_id.encode())
        if not host_allowed(headers):
            bad_host = ApiError("invalid_parameter", "This host is not served here.", param="Host")
            await json_answer(send, 400, envelope(bad_host, request_id), [id_header])
            return
        if settings.SECURE_SSL_REDIRECT and not is_secure(scope, headers):
            # What Django's SecurityMiddleware does for every other path; 308 keeps the
            # POST, and the SDK's client follows it (same host, http to https).
            location = f"https://{headers['host']}{MCP_PATH}".encode("latin-1")
            await json_answer(send, 308, {}, [id_header, (b"location", location)])
            return
        error: ApiError | None = await anyio.to_thread.run_sync(_authentication_error, headers)
        if error is not None:
            await json_answer(
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
