"""JSON bodies parsed within bounds: size, nesting depth and container count are checked on
the raw bytes before ``json.loads`` runs.

The standard parser recurses once per nesting level, so a body a few thousand brackets deep
raises RecursionError (a 500) instead of a parse error, and a body of millions of tiny
containers costs far more memory than its size suggests. Every JSON body the service reads
goes through ``json_loads_bounded``: DRF's parser below (the API's default) and the
provider webhooks (Postmark, Stripe), which read their raw bodies themselves.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework.parsers import JSONParser

from multimail.errors import ApiError

# No request of the API nests deeper than a handful of levels; 32 leaves room for any
# provider payload while staying far below the interpreter's recursion limit.
MAX_DEPTH = 32
# Arrays and objects in one body. A send with the maximum recipients and attachments holds
# a few hundred; provider payloads a few thousand.
MAX_CONTAINERS = 100_000

# A JSON string (escapes included) or one bracket. Strings are matched whole so brackets
# inside them are not counted; the unrolled form runs in linear time on long base64 strings.
_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def _too_large(size: int, limit: int) -> ApiError:
    return ApiError(
        "payload_too_large",
        f"The request body is {size} bytes; the limit is {limit}. Send less per request.",
        limit_bytes=limit,
    )


def _too_deep(detail: str) -> ApiError:
    return ApiError(
        "invalid_parameter",
        f"The JSON body {detail}. Send a flatter body: requests nest at most {MAX_DEPTH} "
        f"levels and hold at most {MAX_CONTAINERS} arrays and objects.",
        param="body",
    )


def json_bounds_check(raw: bytes, *, limit: int | None = None) -> None:
    """Raise the catalog error for a body over the size, depth or container bound.

    Malformed JSON that stays within bounds passes: ``json.loads`` reports it afterwards.
    """
    cap = settings.DATA_UPLOAD_MAX_MEMORY_SIZE if limit is None else limit
    if cap and len(raw) > cap:
        raise _too_large(len(raw), cap)
    depth = containers = 0
    for match in _TOKENS.finditer(raw):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            containers += 1
            if depth > MAX_DEPTH:
                raise _too_deep(f"nests deeper than {MAX_DEPTH} levels")
            if containers > MAX_CONTAINERS:
                raise _too_deep(f"holds more than {MAX_CONTAINERS} arrays and objects")
        elif token in (b"]", b"}"):
            depth = max(depth - 1, 0)


def json_loads_bounded(raw: bytes | str) -> Any:
    """``json.loads`` after ``json_bounds_check``; malformed JSON raises ValueError."""
    data = raw.encode() if isinstance(raw, str) else raw
    json_bounds_check(data)
    return json.loads(data)


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser with the bounds above checked before parsing."""

    def parse(
        self,
        stream: IO[bytes] | None,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        raw = stream.read() if stream is not None else b""
        json_bounds_check(raw)
        return super().parse(io.BytesIO(raw), media_type, parser_context)
