"""The cache backends and expiring counters every process shares.

Production uses Redis. Without Redis (the embedded default) the cache is Django's database
cache on its own connection (the ``cache`` database alias, a SQLite file next to the main
one), so the web workers, the SMTP listener and the scheduler count rate limits and
attempts, and mark used proof-of-work solutions, in one place. Its own connection keeps
those writes out of the request's transaction: a wrong code counts even though the request
that checked it rolls back.

Django's RedisCacheClient builds a new ``redis.Redis`` object for every cache call, and
redis-py builds its response-callback table in that constructor: about a millisecond of
CPU per call. Throttles, rate limits, idempotency and usage counters make several cache
calls per API request, so that constructor was a tenth of an authenticated GET. A client
is thread-safe and holds no state beyond its pool, so one per pool is enough.
"""

from __future__ import annotations

import base64
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.db import DatabaseCache as DjangoDatabaseCache
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient
from django.db import connections, router, transaction
from django.utils import timezone

# The database alias of the database cache (its table is named in settings.CACHES).
CACHE_DATABASE = "cache"


@dataclass(frozen=True, slots=True)
class Counter:
    """An expiring counter to add ``amount`` to: created at 0 with ``ttl`` seconds if absent.
    With ``flag=(flag_key, flag_ttl)`` that key is also set if absent (a once-per-period
    marker), and the answer says whether this addition set it."""

    key: str
    ttl: int
    amount: int = 1
    flag: tuple[str, int] | None = None


@dataclass(frozen=True, slots=True)
class Counted:
    counter: Counter
    value: int  # the counter after the addition
    flagged: bool  # this addition set the counter's flag


class ReusingRedisCacheClient(RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}
        self._counting: Any = None

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        # The stubs do not declare Django's private helpers used here.
        base: Any = self
        index = base._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = base._client(connection_pool=base._get_connection_pool(write))
            self._clients[index] = client
        return client

    def counting_script(self) -> Any:
        """``_COUNTERS_ADD`` on the write client (sent by its digest, loaded when missing)."""
        if self._counting is None:
            self._counting = self.get_client(write=True).register_script(_COUNTERS_ADD)
        return self._counting


class RedisCache(DjangoRedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = ReusingRedisCacheClient

    def counters_add(
        self, counters: Sequence[Counter], read: str | None
    ) -> tuple[list[Counted], Any]:
        """See ``counters_add`` below: one command for all of them (``_COUNTERS_ADD``)."""
        # The stubs do not declare Django's private client attribute.
        base: Any = self
        keys: list[str] = []
        args: list[int] = []
        for counter in counters:
            key = self.make_and_validate_key(counter.key)
            flag, flag_ttl = counter.flag or (None, 0)
            keys += [key, key if flag is None else self.make_and_validate_key(flag)]
            args += [counter.amount, counter.ttl, flag_ttl]
        if read is not None:
            keys.append(self.make_and_validate_key(read))
        results = base._cache.counting_script()(keys=keys, args=args)
        counted = [
            Counted(counter, int(results[2 * i]), bool(results[2 * i + 1]))
            for i, counter in enumerate(counters)
        ]
        stored = results[-1] if read is not None else None
        return counted, None if stored is None else base._cache._serializer.loads(stored)


# The commands of ``counters_add`` on Redis, run as one script: one command to send and one
# reply to parse, where a pipeline of the same commands costs redis-py about two and a half
# times the CPU (a request counts its rate limit and its API call, six commands, and reads
# a version). Per counter (keys: the counter, its flag or the counter again; arguments:
# amount, ttl, flag ttl or 0): SET NX with the expiry then INCRBY, so a counter is created
# with its expiry and never loses it, then the flag's SET NX; then the GET of the last key
# when there is one more. The reply: value and flagged (1/0) per counter, then the read.
_COUNTERS_ADD = """
local counters = #ARGV / 3
local reply = {}
for i = 1, counters do
  local key, ttl, flag_ttl = KEYS[2 * i - 1], ARGV[3 * i - 1], tonumber(ARGV[3 * i])
  redis.call('SET', key, 0, 'NX', 'EX', ttl)
  reply[2 * i - 1] = redis.call('INCRBY', key, ARGV[3 * i - 2])
  reply[2 * i] = 0
  if flag_ttl > 0 and redis.call('SET', KEYS[2 * i], 1, 'NX', 'EX', flag_ttl) then
    reply[2 * i] = 1
  end
end
if #KEYS > 2 * counters then
  reply[2 * counters + 1] = redis.call('GET', KEYS[#KEYS])
end
return reply
"""


class DatabaseCache(DjangoDatabaseCache):
    """Django's database cache with an atomic ``incr`` (and so ``decr``).

    Django's own is a get then a set: two processes counting at once lose one count, and the
    set replaces the key's expiry with the default timeout (an hour-long attempt window
    would shrink to five minutes). Here the read and the write are one transaction with the
    row locked (SQLite: the whole file, BEGIN IMMEDIATE), and the expiry is kept.
    """

    @property
    def _table_name(self) -> str:
        # Set by Django's constructor; the stubs do not declare it.
        base: Any = self
        return str(base._table)

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        cache_key = self.make_and_validate_key(key, version=version)
        db = router.db_for_write(self.cache_model_class)
        connection = connections[db]
        quote = connection.ops.quote_name
        table = quote(self._table_name)
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        now = connection.ops.adapt_datetimefield_value(timezone.now().replace(microsecond=0))
        with transaction.atomic(using=db), connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {quote('value')} FROM {table} "  # noqa: S608 (names are quoted)
                f"WHERE {quote('cache_key')} = %s AND {quote('expires')} > %s{lock}",
                [cache_key, now],
            )
            row = cursor.fetchone()
            if row is None:
                raise ValueError(f"Key '{key}' not found")
            stored = connection.ops.process_clob(row[0])
            value = pickle.loads(base64.b64decode(stored.encode(), validate=True)) + delta  # noqa: S301 (our own rows)
            encoded = base64.b64encode(pickle.dumps(value, self.pickle_protocol)).decode("latin1")
            cursor.execute(
                f"UPDATE {table} SET {quote('value')} = %s "  # noqa: S608
                f"WHERE {quote('cache_key')} = %s",
                [encoded, cache_key],
            )
        return int(value)

    def delete_expired(self) -> int:
        db = router.db_for_write(self.cache_model_class)
        connection = connections[db]
        quote = connection.ops.quote_name
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {quote(self._table_name)} WHERE {quote('expires')} < %s",  # noqa: S608
                [now],
            )
            return int(cursor.rowcount)


class CacheRouter:
    """Django's database cache reads and writes through the ``cache`` alias; its table is
    created there (``createcachetable``), and nothing else is."""

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return CACHE_DATABASE if model._meta.app_label == "django_cache" else None

    db_for_write = db_for_read

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        if app_label == "django_cache":
            return db == CACHE_DATABASE or _same_database(db, CACHE_DATABASE)
        return False if db == CACHE_DATABASE else None


def _same_database(alias: str, other: str) -> bool:
    # On PostgreSQL the cache alias is a second connection to the main database (and a test
    # mirror of it): the table is made wherever that database is migrated.
    first, second = connections[alias].settings_dict, connections[other].settings_dict
    return all(first.get(k) == second.get(k) for k in ("ENGINE", "NAME", "HOST", "PORT"))


def expired_cache_entries_purge() -> int:
    """The database cache deletes an expired entry only when it reads it; counters of past
    windows are never read again, so a periodic purge keeps the table small."""
    backend = caches["default"]
    return backend.delete_expired() if isinstance(backend, DatabaseCache) else 0


def counter_add(
    key: str, amount: int = 1, *, ttl: int, flag: tuple[str, int] | None = None
) -> tuple[int, bool]:
    """Add ``amount`` to the expiring counter ``key`` (created at 0 with ``ttl`` seconds if
    absent) and return its new value. With ``flag=(flag_key, flag_ttl)`` also set that key
    if absent, and say whether this call set it (a once-per-period marker).

    Rate limits and usage counting run this on every API request, so on Redis it is one
    pipelined round trip instead of the three that ``add`` + ``incr`` + ``add`` cost (Django's
    ``incr`` checks existence first). Values stay readable with ``cache.get``."""
    (counted,), _ = counters_add([Counter(key, ttl, amount, flag)])
    return counted.value, counted.flagged


def counters_add(
    counters: Sequence[Counter], *, read: str | None = None
) -> tuple[list[Counted], Any]:
    """``counter_add`` for each of ``counters``, and the value of the cache key ``read``
    (None when absent), in one round trip on Redis: an API request counts its rate limit
    and its account's API calls, and checks a shared version, without a trip for each.

    Each counter is counted as ``counter_add`` counts it alone (its own commands, no
    transaction around them all), and a failed round trip fails as a whole."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        return backend.counters_add(counters, read)
    return [_database_counter_add(backend, counter) for counter in counters], (
        None if read is None else backend.get(read)
    )


def _database_counter_add(backend: Any, counter: Counter) -> Counted:
    # The database cache: add is an insert against the key, incr is atomic (see above).
    backend.add(counter.key, 0, counter.ttl)
    try:
        value = backend.incr(counter.key, counter.amount)
    except ValueError:  # evicted between add and incr
        backend.set(counter.key, counter.amount, counter.ttl)
        value = counter.amount
    flagged = counter.flag is not None and backend.add(counter.flag[0], 1, counter.flag[1])
    return Counted(counter, value, flagged)
