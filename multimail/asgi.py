"""The application as web processes serve it: ASGI (gunicorn with uvicorn workers).

``/mcp`` is the MCP SDK's Streamable HTTP transport, which is ASGI. Every other path is the
Django application as before, run by a2wsgi on a thread pool: the views, middleware and
database code stay synchronous and keep a thread each, as under a threaded WSGI server
(Django's own ASGI handler would run every synchronous view on one shared thread).
"""

from __future__ import annotations

import os

from a2wsgi import WSGIMiddleware
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "multimail.settings")

django_app = get_wsgi_application()

# Imported once Django is set up: the tools use the API's models through its handler.
from multimail.mcp.app import MCP_PATH, KeyRequired, mcp_app  # noqa: E402

_django = WSGIMiddleware(django_app, workers=int(os.environ.get("WEB_THREADS", "8")))
_mcp = mcp_app()
_mcp_with_key = KeyRequired(_mcp)


async def application(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] == "lifespan":
        # The MCP session manager starts and stops with the process.
        await _mcp(scope, receive, send)
    elif scope["type"] == "http" and scope["path"].rstrip("/") == MCP_PATH:
        await _mcp_with_key(scope, receive, send)
    else:
        await _django(scope, receive, send)
