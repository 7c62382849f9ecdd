"""ETags on single resources: If-None-Match answers 304, a stale If-Match is ``conflict``."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response

from multimail.errors import ApiError


def etag_of(representation: Any) -> str:
    digest = hashlib.sha256(
        json.dumps(representation, sort_keys=True, default=str).encode()
    ).hexdigest()
    return f'"{digest[:32]}"'


def _tags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


def etag_response(request: Request, representation: Any, status: int = 200) -> Response:
    etag = etag_of(representation)
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match and (etag in _tags(if_none_match) or "*" in _tags(if_none_match)):
        response = Response(status=304)
    else:
        response = Response(representation, status=status)
    response["ETag"] = etag
    return response


def check_if_match(request: Request, current_representation: Any) -> None:
    """Before a PATCH or DELETE: refuse the write when the client's copy is stale."""
    if_match = request.headers.get("If-Match")
    if not if_match:
        return
    tags = _tags(if_match)
    if "*" in tags or etag_of(current_representation) in tags:
        return
    raise ApiError(
        "conflict",
        "The resource changed since you read it (If-Match is stale). GET it again, "
        "reconcile, and retry with the new ETag.",
        param="If-Match",
    )
