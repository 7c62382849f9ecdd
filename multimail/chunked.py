"""Request bodies sent with ``Transfer-Encoding: chunked`` (no Content-Length).

Django reads exactly CONTENT_LENGTH bytes of a request body and takes a missing length as
an empty body, so a chunked JSON send arrived as ``{}`` and answered missing_parameter.
A WSGI server that has already decoded the chunks marks its input as terminated
(``wsgi.input_terminated``, gunicorn does): it can then be read to its end. This middleware
reads it, up to one byte over the body limit, and hands Django the bytes with their length,
so every size check downstream (payload_too_large, the JSON bounds) applies unchanged.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_READ_SIZE = 64 * 1024


def _read_terminated(stream: Any, cap: int | None) -> bytes:
    """The whole input, or its first ``cap`` bytes when it is longer."""
    parts: list[bytes] = []
    total = 0
    while cap is None or total < cap:
        size = _READ_SIZE if cap is None else min(_READ_SIZE, cap - total)
        part = stream.read(size)
        if not part:
            break
        parts.append(part)
        total += len(part)
    return b"".join(parts)


class ChunkedBodyMiddleware:
    """Gives a chunked request body a Content-Length (see the module docstring)."""

    def __init__(self, app: WsgiApp, *, input_always_terminated: bool = False) -> None:
        # Under ASGI (a2wsgi) the input is the ASGI body messages, which always end: it
        # does not set wsgi.input_terminated, but its input is terminated all the same.
        self.app = app
        self.input_always_terminated = input_always_terminated

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        terminated = self.input_always_terminated or environ.get("wsgi.input_terminated")
        if chunked and not environ.get("CONTENT_LENGTH") and terminated:
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            # One byte over the limit is enough for the envelope middleware to answer
            # payload_too_large; the rest is never read.
            body = _read_terminated(environ["wsgi.input"], limit + 1 if limit else None)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)
