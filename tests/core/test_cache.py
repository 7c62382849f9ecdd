"""The Redis cache backend reuses its client (building one per call cost ~1 ms of CPU)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.cache import cache

pytestmark = pytest.mark.skipif(not settings.REDIS_URL, reason="needs the Redis cache")


def test_one_client_per_pool_and_the_cache_still_works() -> None:
    client = cache._cache  # type: ignore[attr-defined]
    assert client.get_client(write=True) is client.get_client(write=True)
    cache.set("probe", {"a": 1}, 5)
    assert cache.get("probe") == {"a": 1}
    assert cache.add("counter", 0, 5)
    assert cache.incr("counter") == 1
