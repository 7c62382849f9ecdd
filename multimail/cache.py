"""The Redis cache backend, reusing one client per connection pool, and expiring counters.

Django's RedisCacheClient builds a new ``redis.Redis`` object for every cache call, and
redis-py builds its response-callback table in that constructor: about a millisecond of
CPU per call. Throttles, rate limits, idempotency and usage counters make several cache
calls per API request, so that constructor was a tenth of an authenticated GET. A client
is thread-safe and holds no state beyond its pool, so one per pool is enough.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


class ReusingRedisCacheClient(RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        # The stubs do not declare Django's private helpers used here.
        base: Any = self
        index = base._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = base._client(connection_pool=base._get_connection_pool(write))
            self._clients[index] = client
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = ReusingRedisCacheClient

    def counter_add(
        self, key: str, amount: int, *, ttl: int, flag: tuple[str, int] | None = None
    ) -> tuple[int, bool]:
        """See ``counter_add`` below: one pipelined round trip."""
        # The stubs do not declare Django's private client attribute.
        base: Any = self
        client = base._cache.get_client(write=True)
        counter_key = self.make_and_validate_key(key)
        pipe = client.pipeline(transaction=False)
        # SET NX then INCRBY: a counter is created with its expiry and never loses it.
        pipe.set(counter_key, 0, nx=True, ex=ttl)
        pipe.incrby(counter_key, amount)
        if flag is not None:
            pipe.set(self.make_and_validate_key(flag[0]), 1, nx=True, ex=flag[1])
        results = pipe.execute()
        return int(results[1]), bool(flag is not None and results[2])


def counter_add(
    key: str, amount: int = 1, *, ttl: int, flag: tuple[str, int] | None = None
) -> tuple[int, bool]:
    """Add ``amount`` to the expiring counter ``key`` (created at 0 with ``ttl`` seconds if
    absent) and return its new value. With ``flag=(flag_key, flag_ttl)`` also set that key
    if absent, and say whether this call set it (a once-per-period marker).

    Rate limits and usage counting run this on every API request, so on Redis it is one
    pipelined round trip instead of the three that ``add`` + ``incr`` + ``add`` cost (Django's
    ``incr`` checks existence first). Values stay readable with ``cache.get``."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        return backend.counter_add(key, amount, ttl=ttl, flag=flag)
    # The embedded mode's in-process cache: the same contract, atomic enough in one process.
    backend.add(key, 0, ttl)
    try:
        value = backend.incr(key, amount)
    except ValueError:  # evicted between add and incr
        backend.set(key, amount, ttl)
        value = amount
    flagged = flag is not None and backend.add(flag[0], 1, flag[1])
    return value, flagged
