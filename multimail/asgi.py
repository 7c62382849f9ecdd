"""The application as web processes serve it: ASGI, in gunicorn with uvicorn workers
(``multimail.asgi_worker.Worker``).

``/mcp`` is the MCP SDK's Streamable HTTP transport, which is ASGI. ``/v1/events`` (and its
compat twin) is the live event stream, a coroutine per listener (``mailboxes.sse``), so an
open stream holds no thread of the pool below. Every other path is the
Django application as before, run by a2wsgi on a thread pool: the views, middleware and
database code stay synchronous and keep a thread each, as under a threaded WSGI server
(Django's own ASGI handler would run every synchronous view on one shared thread).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, cast

from a2wsgi import WSGIMiddleware
from django.core.wsgi import get_wsgi_application
from starlette.types import ASGIApp, Message, Receive, Scope, Send

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "multimail.settings")

django_app = get_wsgi_application()

# Imported once Django is set up: the MCP tools reach the API through its handler.
from mailboxes.sse import EVENTS_PATHS, events_app  # noqa: E402
from multimail.chunked import ChunkedBodyMiddleware  # noqa: E402
from multimail.mcp.app import MCP_PATH, KeyRequired, mcp_app  # noqa: E402

# Threads per process for the Django application, as gunicorn's --threads was.
WEB_THREADS = int(os.environ.get("WEB_THREADS", "4"))

# Chunked request bodies get their length before Django reads them (multimail.chunked).
_django = cast(
    ASGIApp,
    WSGIMiddleware(
        cast(Any, ChunkedBodyMiddleware(django_app, input_always_terminated=True)),
        workers=WEB_THREADS,
    ),
)
_mcp = mcp_app()
_mcp_with_key = KeyRequired(_mcp)
# gunicorn's access log (configured by --access-logfile; silent without it).
_access = logging.getLogger("gunicorn.access")


async def _route(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        # The MCP session manager starts and stops with the process.
        await _mcp(scope, receive, send)
    elif scope["type"] == "http" and scope["path"].rstrip("/") == MCP_PATH:
        # /mcp/ too: clients that add a slash are not sent a redirect they may not follow.
        await _mcp_with_key({**scope, "path": MCP_PATH}, receive, send)
    elif scope["type"] == "http" and scope["path"].rstrip("/") in EVENTS_PATHS:
        await events_app(scope, receive, send)
    else:
        await _django(scope, receive, send)


async def application(scope: Scope, receive: Receive, send: Send) -> None:
    """Routes a request, and writes its access line as gunicorn.conf.py's format does."""
    if scope["type"] != "http" or not _access.handlers:
        await _route(scope, receive, send)
        return
    started = time.monotonic()
    answer: dict[str, Any] = {"status": "-", "bytes": 0, "request_id": "-"}

    async def observed(message: Message) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            for name, value in message.get("headers", []):
                if name.lower() == b"x-request-id":
                    answer["request_id"] = value.decode("latin-1")
        elif message["type"] == "http.response.body":
            answer["bytes"] += len(message.get("body", b""))
        await send(message)

    try:
        await _route(scope, receive, observed)
    finally:
        client = scope.get("client") or ("-", 0)
        query = f"?{scope['query_string'].decode('latin-1')}" if scope.get("query_string") else ""
        _access.info(
            '%s "%s %s%s HTTP/%s" %s %s %dms pid=%s request_id=%s',
            client[0],
            scope["method"],
            scope["path"],
            query,
            scope.get("http_version", "1.1"),
            answer["status"],
            answer["bytes"],
            (time.monotonic() - started) * 1000,
            os.getpid(),
            answer["request_id"],
        )
