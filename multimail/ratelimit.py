"""Fixed-window counters in the shared cache, for throttles and per-endpoint limits."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.http import HttpRequest
from rest_framework.request import Request

from multimail.cache import Counted, Counter, counter_add, counters_add


def client_ip(request: HttpRequest | Request) -> str:
    """The address a per-client limit counts against.

    REMOTE_ADDR only: a proxy in front sets it through the WSGI server, and trusting a
    client-sent X-Forwarded-For would let anyone reset their counters.
    """
    return str(request.META.get("REMOTE_ADDR", ""))


def _now() -> float:
    return time.time()


@dataclass(frozen=True, slots=True)
class Hit:
    allowed: bool
    count: int
    retry_after: int


def hit(bucket: str, *, limit: int, window_seconds: int, cost: int = 1) -> Hit:
    """Count one use of ``bucket``; ``allowed`` is False once ``limit`` is passed."""
    now = int(_now())
    window_start = now - now % window_seconds
    count, _ = counter_add(f"rl:{bucket}:{window_start}", cost, ttl=window_seconds + 5)
    return _hit(count, limit=limit, window_start=window_start, window_seconds=window_seconds)


def hit_and_read(
    bucket: str, *, limit: int, window_seconds: int, read: str, also: Sequence[Counter] = ()
) -> tuple[Hit, Any, list[Counted]]:
    """``hit``, the cache value of ``read`` and the additions to the counters ``also``, in
    the same round trip."""
    now = int(_now())
    window_start = now - now % window_seconds
    counter = Counter(f"rl:{bucket}:{window_start}", ttl=window_seconds + 5)
    (counted, *others), value = counters_add([counter, *also], read=read)
    hit = _hit(counted.value, limit=limit, window_start=window_start, window_seconds=window_seconds)
    return hit, value, others


def _hit(count: int, *, limit: int, window_start: int, window_seconds: int) -> Hit:
    retry_after = max(1, window_start + window_seconds - int(_now()))
    return Hit(allowed=count <= limit, count=count, retry_after=retry_after)


def peek(bucket: str, *, window_seconds: int) -> int:
    now = int(_now())
    return int(cache.get(f"rl:{bucket}:{now - now % window_seconds}") or 0)


def reset(bucket: str, *, window_seconds: int) -> None:
    now = int(_now())
    cache.delete(f"rl:{bucket}:{now - now % window_seconds}")
