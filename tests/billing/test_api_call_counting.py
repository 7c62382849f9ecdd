"""API calls counted in authentication's round trip count exactly what the middleware counts.

A remembered principal's request counts its API call in the round trip that checks the
principal's version and counts its rate limit (billing.usage.api_call_counter); before,
ApiCallUsageMiddleware counted every call after the view, as it still does without a
remembered principal. Generated request sequences (successes, refusals by the view, by the
scope check, by the rate limit, wrong keys, a key revoked and restored, a minute passing)
leave the same answers, the same counters in the cache and the same UsageDaily rows as
with the middleware counting them all (API_CALL_COUNTER empty: the old way).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache, caches
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import ApiKey
from accounts.principals import principal_version_key
from billing.models import UsageDaily, UsageEventType
from billing.usage import _api_calls_counter
from multimail import authentication, ratelimit
from multimail.cache import Counter, RedisCache, counters_add
from multimail.ids import new_id
from tests.conftest import Tenant, client_for, key_for

pytestmark = pytest.mark.django_db

READ_BUDGET = 6
OPERATIONS = (
    "account",
    "usage",
    "missing",
    "forbidden",
    "wrong_key",
    "revoke",
    "restore",
    "minute",
)


def _version_bump(key: ApiKey) -> None:
    # What principal_versions_bump does once a write commits (the test's never commits).
    cache.set(principal_version_key(key.account_id), new_id(), 3600)


def _run(owner: Tenant, key: ApiKey, raw: str, operations: list[str]) -> dict[str, Any]:
    client, stranger = client_for(raw), client_for(key.prefix + "x" * 40)
    answers: list[Any] = []
    for operation in operations:
        if operation == "revoke" or operation == "restore":
            ApiKey.objects.filter(pk=key.pk).update(is_active=operation == "restore")
            _version_bump(key)
            continue
        if operation == "minute":  # the flush marker expires: the next count may flush
            cache.delete(f"usage:api_calls:flushed:{owner.account.pk}")
            continue
        if operation == "account":
            response = client.get("/v1/account")
        elif operation == "usage":
            response = client.get("/v1/usage")
        elif operation == "missing":
            response = client.get(f"/v1/mailboxes/{owner.mailbox.pk}/emails/{'0' * 26}")
        elif operation == "forbidden":
            response = client.post("/v1/api-keys", {"name": "x"}, format="json")
        else:
            response = stranger.get("/v1/account")
        body = response.json()
        answers.append(
            (
                response.status_code,
                body.get("api_calls")
                if operation == "usage"
                else body.get("error", {}).get("code"),
            )
        )
    counter = _api_calls_counter(owner.account.pk)
    return {
        "answers": answers,
        "pending": cache.get(counter.key),
        "flagged": cache.get(counter.flag[0]) if counter.flag else None,
        "stored": list(
            UsageDaily.objects.filter(
                account=owner.account, event_type=UsageEventType.API_CALLS
            ).values_list("date", "count")
        ),
        "read_rate": ratelimit.peek(f"key:{key.pk}:read", window_seconds=60),
        "send_rate": ratelimit.peek(f"key:{key.pk}:send", window_seconds=60),
    }


def _fresh(key: ApiKey) -> None:
    cache.clear()
    UsageDaily.objects.all().delete()
    ApiKey.objects.filter(pk=key.pk).update(is_active=True)
    authentication._remembered.clear()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(operations=st.lists(st.sampled_from(OPERATIONS), min_size=1, max_size=14))
def test_counted_in_the_round_trip_as_by_the_middleware_alone(
    owner: Tenant, monkeypatch: pytest.MonkeyPatch, operations: list[str]
) -> None:
    # One rate window for the whole test: both runs see the same budget.
    monkeypatch.setattr(ratelimit, "_now", lambda: 1_800_000_000.0)
    key, raw = key_for(owner.account, "read")
    runs = []
    for in_the_round_trip in (False, True):
        _fresh(key)
        with override_settings(
            API_PRINCIPAL_CACHE_SECONDS=600,
            API_RATE_LIMIT_READ_PER_MINUTE=READ_BUDGET,
            API_CALL_COUNTER=django_settings.API_CALL_COUNTER if in_the_round_trip else "",
        ):
            # Loaded, then confirmed: the sequence starts with the principal remembered.
            runs.append(_run(owner, key, raw, ["account", "account", *operations]))
    by_the_middleware, in_the_round_trip_too = runs
    assert in_the_round_trip_too == by_the_middleware


def test_the_remembered_request_costs_one_round_trip(
    owner: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rate limit, version and API call in one command; nothing else of the cache."""
    if not isinstance(caches["default"], RedisCache):
        pytest.skip("needs the Redis cache")
    _, raw = key_for(owner.account, "read")
    client = client_for(raw)
    with override_settings(API_PRINCIPAL_CACHE_SECONDS=600):
        for _ in range(3):  # loaded, confirmed, remembered
            assert client.get("/v1/account").status_code == 200
        commands: list[tuple[Any, ...]] = []
        redis_client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]
        execute = redis_client.execute_command

        def recorded(*args: Any, **options: Any) -> Any:
            commands.append(args)
            return execute(*args, **options)

        monkeypatch.setattr(redis_client, "execute_command", recorded)
        assert client.get("/v1/account").status_code == 200
    # The rate limit's counter, the API calls' counter and its flag, then the version.
    assert [(c[0], c[2]) for c in commands] == [("EVALSHA", 5)]


def test_a_request_refused_after_the_count_is_taken_back(owner: Tenant) -> None:
    """The remembered key was usable, so the round trip counted its call; the version had
    changed and the rows read again refuse the key: the call is taken back."""
    key, raw = key_for(owner.account, "read")
    client = client_for(raw)
    counter = _api_calls_counter(owner.account.pk)
    with override_settings(API_PRINCIPAL_CACHE_SECONDS=600):
        for _ in range(3):
            assert client.get("/v1/account").status_code == 200
        pending = cache.get(counter.key)
        ApiKey.objects.filter(pk=key.pk).update(is_active=False)
        _version_bump(key)
        assert client.get("/v1/account").status_code == 401
        assert cache.get(counter.key) == pending


@settings(max_examples=40, deadline=None)
@given(
    batch=st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c"]),
            st.integers(min_value=-3, max_value=5),
            st.booleans(),
        ),
        min_size=1,
        max_size=6,
    ),
    read=st.sampled_from([None, "a", "flag:a", "absent"]),
)
def test_counters_add_counts_as_add_incr_add(
    batch: list[tuple[str, int, bool]], read: str | None
) -> None:
    """The one round trip against the cache calls it replaces: add(key, 0, ttl),
    incr(key, amount), add(flag, 1, flag_ttl) for each counter in order, then get(read)."""
    cache.clear()
    counters = [
        Counter(
            f"new:{name}", ttl=60, amount=amount, flag=(f"new:flag:{name}", 30) if flag else None
        )
        for name, amount, flag in batch
    ]
    added, value = counters_add(counters, read=None if read is None else f"new:{read}")
    expected = []
    for name, amount, flag in batch:
        cache.add(f"old:{name}", 0, 60)
        expected.append(
            (cache.incr(f"old:{name}", amount), flag and cache.add(f"old:flag:{name}", 1, 30))
        )
    assert [(c.value, c.flagged) for c in added] == expected
    assert [c.counter for c in added] == counters
    assert value == (None if read is None else cache.get(f"old:{read}"))
    for name in ("a", "b", "c", "flag:a", "flag:b", "flag:c"):
        assert cache.get(f"new:{name}") == cache.get(f"old:{name}")
        assert _expires(f"new:{name}") == _expires(f"old:{name}")


def _expires(key: str) -> bool | None:
    """Whether the key has an expiry (None: absent); on Redis, where it can be read."""
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return cache.get(key) is not None or None
    ttl = backend._cache.get_client().ttl(backend.make_and_validate_key(key))  # type: ignore[attr-defined]
    return None if ttl == -2 else ttl > 0
