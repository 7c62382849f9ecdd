"""The Redis cache backend, reusing one client per connection pool.

Django's RedisCacheClient builds a new ``redis.Redis`` object for every cache call, and
redis-py builds its response-callback table in that constructor: about a millisecond of
CPU per call. Throttles, rate limits, idempotency and usage counters make several cache
calls per API request, so that constructor was a tenth of an authenticated GET. A client
is thread-safe and holds no state beyond its pool, so one per pool is enough.
"""

from __future__ import annotations

from typing import Any

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
