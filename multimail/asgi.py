"""The application as web processes serve it: ASGI (gunicorn with uvicorn workers).

``/mcp`` is the MCP SDK's Streamable HTTP transport, which is ASGI. Every other path is the
Django application as before, run by a2wsgi on a thread pool: the views, middleware and
database code stay synchronous and keep a thread each, as under a threaded WSGI server
(Django's own ASGI handler would run every synchronous view on one shared thread).
"""

from __future__ import annotations

import os
from typing import Any, cast

from a2wsgi import WSGIMiddleware
from django.core.wsgi import get_wsgi_application
from starlette.types import ASGIApp, Receive, Scope, Send

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "multimail.settings")

django_app = get_wsgi_application()

# Imported once Django is set up: the tools use the API's models through its handler.
from multimail.mcp.app import MCP_PATH, KeyRequired, mcp_app  # noqa: E402

# As many threads per process as the WSGI server had (gunicorn --threads 4).
_django = cast(
    ASGIApp, WSGIMiddleware(cast(Any, django_app), workers=int(os.environ.get("WEB_THREADS", "4")))
)
_mcp = mcp_app()
_mcp_with_key = KeyRequired(_mcp)


async def application(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        # The MCP session manager starts and stops with the process.
        await _mcp(scope, receive, send)
    elif scope["type"] == "http" and scope["path"].rstrip("/") == MCP_PATH:
        # /mcp/ too: clients that add a slash are not sent a redirect they may not follow.
        await _mcp_with_key({**scope, "path": MCP_PATH}, receive, send)
    else:
        await _django(scope, receive, send)
