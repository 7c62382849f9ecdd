"""Cursor pagination: ``limit`` (1-100) and an opaque ``cursor``.

Ids are time-ordered, so every list pages by ``id`` descending (newest first) with a keyset
condition: the cost of a page does not grow with how deep it is. A search pages by its rank,
then by id (``ranked_paginate``), with a cursor of its own.
"""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet
from drf_spectacular.utils import OpenApiParameter

from multimail.errors import ApiError

MAX_LIMIT = 100


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Any]
    next_cursor: str | None


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(f"v1:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        version, _, last_id = base64.urlsafe_b64decode(padded.encode()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        version, last_id = "", ""
    if version != "v1" or not last_id or len(last_id) > 64:
        raise ApiError(
            "invalid_parameter",
            "The cursor is not one this API returned. Pass the cursor from the "
            "previous page unchanged, or omit it for the first page.",
            param="cursor",
        )
    return last_id


def parse_limit(raw: str | None, *, default: int) -> int:
    if raw in (None, ""):
        return default
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(
            "invalid_parameter", f"limit must be an integer from 1 to {MAX_LIMIT}.", param="limit"
        )
    return limit


def cursor_paginate(
    queryset: QuerySet[Any],
    params: Any,
    *,
    default_limit: int = 20,
    field: str = "id",
    scope: tuple[str, str] | None = None,
    oldest_first: bool = False,
) -> Page:
    """One page of ``queryset`` ordered by ``field`` descending (ascending with
    ``oldest_first``); ``params`` is the query dict.

    ``scope=(column, value)`` restricts the page to rows whose ``column`` is ``value`` in a
    way that keeps PostgreSQL on the (column, id) index however skewed the data is (see
    multimail.lookups); the queryset must not filter that column itself.
    """
    limit = parse_limit(params.get("limit"), default=default_limit)
    cursor = params.get("cursor")
    rows = cursor_page_query(
        queryset,
        limit=limit,
        after=decode_cursor(cursor) if cursor else None,
        field=field,
        scope=scope,
        oldest_first=oldest_first,
    )
    return cursor_page(list(rows), limit=limit, field=field)


def cursor_page_query(
    queryset: QuerySet[Any],
    *,
    limit: int,
    after: str | None,
    field: str = "id",
    scope: tuple[str, str] | None = None,
    oldest_first: bool = False,
) -> QuerySet[Any]:
    """The rows of a ``cursor_paginate`` page, one more than ``limit`` to tell whether a
    next page exists; ``after`` is the decoded cursor. For a caller that runs the query
    itself (multimail.statements) and then makes the page with ``cursor_page``."""
    if after is not None:
        queryset = queryset.filter(**{f"{field}__{'gt' if oldest_first else 'lt'}": after})
    ordering = [field if oldest_first else f"-{field}"]
    if scope is not None:
        column, value = scope
        queryset = queryset.filter(**{f"{column}__any_of": [value]})
        ordering.insert(0, column)
    return queryset.order_by(*ordering)[: limit + 1]


def cursor_page(rows: list[Any], *, limit: int, field: str = "id") -> Page:
    """The page of the rows ``cursor_page_query`` selected."""
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(getattr(rows[-1], field)) if has_more and rows else None
    return Page(items=rows, next_cursor=next_cursor)


def encode_ranked_cursor(rank: float, last_id: str) -> str:
    # repr of a float reads back as the same float: the next page compares it exactly.
    return base64.urlsafe_b64encode(f"r1:{rank!r}:{last_id}".encode()).decode().rstrip("=")


def decode_ranked_cursor(cursor: str) -> tuple[float, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        version, _, rest = base64.urlsafe_b64decode(padded.encode()).decode().partition(":")
        raw_rank, _, last_id = rest.partition(":")
        rank = float(raw_rank)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        version, rank, last_id = "", 0.0, ""
    if version != "r1" or not math.isfinite(rank) or not last_id or len(last_id) > 64:
        raise ApiError(
            "invalid_parameter",
            "The cursor is not one this API returned for this search. Pass the cursor from "
            "the previous page unchanged, with the same q, or omit it for the first page.",
            param="cursor",
        )
    return rank, last_id


def ranked_paginate(
    queryset: QuerySet[Any], params: Any, *, rank: str, default_limit: int = 20
) -> Page:
    """One page of ``queryset`` best first: by the annotation ``rank`` descending, then by
    ``id`` descending among equal ranks. The cursor carries both, so the keyset is exact
    as long as a row's rank does not change between pages (it depends only on the row and
    the query on PostgreSQL)."""
    limit = parse_limit(params.get("limit"), default=default_limit)
    cursor = params.get("cursor")
    if cursor:
        last_rank, last_id = decode_ranked_cursor(cursor)
        queryset = queryset.filter(
            Q(**{f"{rank}__lt": last_rank}) | Q(**{rank: last_rank, "id__lt": last_id})
        )
    rows = list(queryset.order_by(f"-{rank}", "-id")[: limit + 1])
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = (
        encode_ranked_cursor(getattr(rows[-1], rank), rows[-1].pk) if has_more and rows else None
    )
    return Page(items=rows, next_cursor=next_cursor)


def pagination_parameters(default_limit: int = 20) -> list[OpenApiParameter]:
    return [
        OpenApiParameter(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": default_limit},
            description=f"1-{MAX_LIMIT}, default {default_limit}",
        ),
        OpenApiParameter("cursor", str, description="Opaque cursor from the previous page"),
    ]
