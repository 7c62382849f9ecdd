"""How an MCP tool reaches the API: one in-process call of the ``/v1`` route the official
MultiMail MCP server calls over HTTP for that tool, through the same Django handler.

The call runs the route's whole stack: the middleware (request id, idempotency keys, usage
counting), the key authentication, the scope permission, throttles, the view and so the
services it calls, the exception handler. Scopes, oversight, quotas, admin-action approval
codes, idempotency and tenancy therefore apply to a tool exactly as to the API, and no
view logic is copied here. A non-2xx answer becomes a ``ToolError`` whose text carries
the catalog's code, message and fix.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from django.core.handlers.wsgi import WSGIHandler
from django.db import connections
from django.http.request import split_domain_port
from mcp.server.mcpserver.exceptions import ToolError

from multimail.errors import REGISTRY

# The caller's headers an inner call carries: the key, what identifies the client to the
# rate limits and the idempotency scope, as on a direct API call, and the /mcp request's id.
FORWARDED_HEADERS = (
    "authorization",
    "user-agent",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-request-id",
)


@dataclass(frozen=True, slots=True)
class Caller:
    """The HTTP request to /mcp that a tool call arrived on."""

    headers: Mapping[str, str]
    host: str
    scheme: str
    client_ip: str


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes = field(repr=False)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else {}


_handler: WSGIHandler | None = None


def _django() -> WSGIHandler:
    global _handler
    if _handler is None:
        _handler = WSGIHandler()
    return _handler


def segment(value: str, param: str) -> str:
    """One path segment from a tool argument. The inner request's path is decoded, as a WSGI
    server hands it over, so a ``/`` or a dot segment would reach another route: refused."""
    if not value or "/" in value or value in (".", ".."):
        raise ToolError(
            catalog_text(
                "invalid_parameter",
                f"{param} must be an id or name without '/'.",
                details={"param": param},
            )
        )
    return value


def call(
    caller: Caller,
    method: str,
    path: str,
    *,
    body: Mapping[str, Any] | None = None,
    query: Mapping[str, Any] | None = None,
) -> Answer:
    """Run one API request in this thread and return its answer, whatever the status."""
    payload = json.dumps(body).encode() if body is not None else b""
    params = {key: value for key, value in (query or {}).items() if value is not None}
    host, port = split_domain_port(caller.host)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        # WSGI carries the decoded path as UTF-8 bytes in a latin-1 str.
        "PATH_INFO": path.encode("utf-8").decode("latin-1"),
        "QUERY_STRING": urlencode(
            {
                key: str(value).lower() if isinstance(value, bool) else str(value)
                for key, value in params.items()
            }
        ),
        "SERVER_NAME": host,
        "SERVER_PORT": port or ("443" if caller.scheme == "https" else "80"),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": caller.client_ip,
        "HTTP_HOST": caller.host,
        "HTTP_ACCEPT": "application/json",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": caller.scheme,
        "wsgi.input": io.BytesIO(payload),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if body is not None:
        environ["CONTENT_TYPE"] = "application/json"
        environ["CONTENT_LENGTH"] = str(len(payload))
    for name in FORWARDED_HEADERS:
        value = caller.headers.get(name)
        if value is not None:
            environ["HTTP_" + name.upper().replace("-", "_")] = value
    started: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started["status"] = int(status.split(" ", 1)[0])
        started["headers"] = {name.lower(): value for name, value in headers}
        return lambda data: None

    try:
        response = _django()(environ, start_response)
        try:
            content = b"".join(response)
        finally:
            close = getattr(response, "close", None)
            if close is not None:
                close()
    finally:
        # Tool calls run on the SDK's worker threads, not on request threads: a connection
        # kept open there would sit idle between calls (and through a wait_for_email).
        connections.close_all()
    return Answer(started["status"], started["headers"], content)


def catalog_text(
    code: str,
    message: str | None = None,
    *,
    status: int | None = None,
    details: Mapping[str, Any] | None = None,
    doc_url: str | None = None,
) -> str:
    """A tool error's text: the catalog's code and fix beside the specific message."""
    entry = REGISTRY[code]
    lines = [
        f"Error {entry.code} (HTTP {status or entry.status}): {message or entry.cause}",
        f"Fix: {entry.fix}",
    ]
    if details:
        lines.append("Details: " + json.dumps(dict(details), sort_keys=True))
    if doc_url:
        lines.append(f"Docs: {doc_url}")
    return "\n".join(lines)


def error_text(answer: Answer) -> str:
    """The tool error of an API error answer: its envelope's code, message and details."""
    try:
        error = answer.json().get("error")
    except ValueError:
        error = None
    if not isinstance(error, dict) or error.get("code") not in REGISTRY:
        return catalog_text("internal_error", status=answer.status)
    details = {
        key: value for key, value in error.items() if key not in ("code", "message", "doc_url")
    }
    if "retry-after" in answer.headers:
        details["retry_after_seconds"] = answer.headers["retry-after"]
    return catalog_text(
        error["code"],
        error.get("message"),
        status=answer.status,
        details=details,
        doc_url=error.get("doc_url"),
    )


def raise_for_error(answer: Answer) -> Answer:
    """The answer itself if it is a 2xx; any other answer is raised as the tool's error."""
    if answer.status >= 300:
        raise ToolError(error_text(answer))
    return answer


def request(
    caller: Caller,
    method: str,
    path: str,
    *,
    body: Mapping[str, Any] | None = None,
    query: Mapping[str, Any] | None = None,
) -> Any:
    return raise_for_error(call(caller, method, path, body=body, query=query)).json()


def without_none(**values: Any) -> dict[str, Any]:
    """A request body of the arguments the agent gave: an omitted argument is not sent."""
    return {key: value for key, value in values.items() if value is not None}
