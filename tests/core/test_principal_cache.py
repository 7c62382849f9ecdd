"""The principal each process remembers: no key query while the account's version stands,
and every committed change of the key or its account is seen on the very next request,
whichever thread or process made it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, timedelta
from typing import Any

import hypothesis
import pytest
from django.core.cache import cache
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from hypothesis import strategies as st
from rest_framework.test import APIClient

from accounts.actors import Actor
from accounts.models import Account, ApiKey
from accounts.principals import principal_version_key
from accounts.services import account_delete, account_update, api_key_revoke, api_key_update
from accounts.support import support_account_deactivate, support_sending_set
from billing.periods import current_period
from billing.services.enforcement import account_deactivate_unpaid
from multimail import ratelimit
from oversight.stop import sending_stop
from tests.conftest import Tenant, assert_error, client_for, key_for

# Writes must commit for their version to be replaced (on commit), as in production.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _remembering(settings: Any) -> None:
    settings.API_PRINCIPAL_CACHE_SECONDS = 600


def _key_queries(client: APIClient, path: str = "/v1/account") -> tuple[int, int]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    return response.status_code, sum("accounts_apikey" in q["sql"] for q in queries)


def _elsewhere(write: Callable[[], Any]) -> None:
    """Run ``write`` on another thread, with its own database connection, and commit."""

    def run() -> None:
        try:
            write()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()


@pytest.fixture
def remembered(owner: Tenant) -> tuple[ApiKey, APIClient]:
    """A key this process has loaded and confirmed: its requests read no key row."""
    key, raw = key_for(owner.account, "admin")
    client = client_for(raw)
    for _ in range(2):  # loaded, then confirmed against the version
        assert client.get("/v1/account").status_code == 200
    assert _key_queries(client) == (200, 0)
    return key, client


def test_a_revoked_key_is_refused_on_the_next_request(
    owner: Tenant, remembered: tuple[ApiKey, APIClient]
) -> None:
    key, client = remembered
    actor = Actor.system(owner.account, label="test")
    _elsewhere(lambda: api_key_revoke(actor=actor, key_id=key.pk))
    assert_error(client.get("/v1/account"), "invalid_api_key")


def test_new_scopes_apply_on_the_next_request(
    owner: Tenant, remembered: tuple[ApiKey, APIClient]
) -> None:
    key, client = remembered
    actor = Actor.system(owner.account, label="test")
    _elsewhere(lambda: api_key_update(actor=actor, key_id=key.pk, scopes=["read"]))
    response = client.post("/v1/api-keys", {"name": "x"}, format="json")
    assert_error(response, "insufficient_permissions")


def _deactivate_by_support(account: Account) -> None:
    support_account_deactivate(actor=Actor.support(account, "staff"), reason="test")


def _deactivate_unpaid(account: Account) -> None:
    account_deactivate_unpaid(account_id=account.pk)


def _stop_sending(account: Account) -> None:
    sending_stop(actor=Actor.system(account, label="test"))


def _disable_sending(account: Account) -> None:
    support_sending_set(actor=Actor.support(account, "staff"), disabled=True, reason="test")


def _rename(account: Account) -> None:
    account_update(actor=Actor.system(account, label="test"), changes={"name": "Renamed"})


@pytest.mark.parametrize(
    "write",
    [_deactivate_by_support, _deactivate_unpaid, _stop_sending, _disable_sending, _rename],
)
def test_each_account_writer_replaces_the_version(
    owner: Tenant, write: Callable[[Account], None]
) -> None:
    """A sample of the services that write accounts (tests/core/test_principal_writers.py
    checks that every one calls principal_versions_bump)."""
    before = cache.get(principal_version_key(owner.account.pk))
    _elsewhere(lambda: write(owner.account))
    assert cache.get(principal_version_key(owner.account.pk)) not in (None, before)


def test_a_period_rollover_replaces_the_version(owner: Tenant) -> None:
    """The remembered account holds period_start: advancing it is a change (once)."""
    Account.objects.filter(pk=owner.account.pk).update(
        period_start=owner.account.created_at - timedelta(days=40)
    )
    before = cache.get(principal_version_key(owner.account.pk))
    _elsewhere(lambda: current_period(Account.objects.get(pk=owner.account.pk)))
    after = cache.get(principal_version_key(owner.account.pk))
    assert after not in (None, before)
    _elsewhere(lambda: current_period(Account.objects.get(pk=owner.account.pk)))
    assert cache.get(principal_version_key(owner.account.pk)) == after


@pytest.mark.parametrize("write", [_deactivate_by_support, _deactivate_unpaid])
def test_a_deactivated_account_is_refused_on_the_next_request(
    owner: Tenant, remembered: tuple[ApiKey, APIClient], write: Callable[[Account], None]
) -> None:
    _, client = remembered
    _elsewhere(lambda: write(owner.account))
    assert_error(client.get("/v1/account"), "account_deactivated")


def test_the_keys_of_a_deleted_account_are_refused(
    owner: Tenant, remembered: tuple[ApiKey, APIClient]
) -> None:
    _, client = remembered
    _elsewhere(lambda: account_delete(actor=Actor.system(owner.account, label="test")))
    assert_error(client.get("/v1/account"), "invalid_api_key")


def test_account_fields_are_fresh_after_a_change(
    owner: Tenant, remembered: tuple[ApiKey, APIClient]
) -> None:
    _, client = remembered
    _elsewhere(lambda: _rename(owner.account))
    assert client.get("/v1/account").json()["name"] == "Renamed"
    assert _key_queries(client) == (200, 0)  # remembered again under the new version


def test_last_use_refresh_keeps_the_principal(
    owner: Tenant, remembered: tuple[ApiKey, APIClient]
) -> None:
    """Recording a key's last use is not a change of the principal."""
    key, client = remembered
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=None)
    assert _key_queries(client) == (200, 0)


def test_a_wrong_secret_with_a_known_prefix_is_refused(
    remembered: tuple[ApiKey, APIClient], settings: Any
) -> None:
    """Memory is found by the whole key's hash: the right prefix with another secret is
    looked up, refused, and does not count against the real key's budget."""
    key, client = remembered
    settings.API_RATE_LIMIT_READ_PER_MINUTE = 4
    forged = client_for(key.prefix + "x" * 40)
    for _ in range(5):
        assert_error(forged.get("/v1/account"), "invalid_api_key")
    assert client.get("/v1/account").status_code == 200


def test_the_remembered_path_still_counts_the_rate_limit(
    remembered: tuple[ApiKey, APIClient], settings: Any
) -> None:
    key, client = remembered
    used = ratelimit.peek(f"key:{key.pk}:read", window_seconds=60)
    settings.API_RATE_LIMIT_READ_PER_MINUTE = used + 1
    assert client.get("/v1/account").status_code == 200
    assert ratelimit.peek(f"key:{key.pk}:read", window_seconds=60) == used + 1
    assert_error(client.get("/v1/account"), "rate_limit_exceeded", limit_type="read")


def test_a_request_cannot_change_the_remembered_rows(
    owner: Tenant, remembered: tuple[ApiKey, APIClient]
) -> None:
    """Each request gets its own copies: changing one in place is not seen by the next."""
    from multimail import authentication

    key, _ = remembered
    entry = authentication._remembered[key.key_hash]
    first = authentication._copy(entry.key)
    first.scopes.append("changed")
    first.account.name = "changed"
    second = authentication._copy(entry.key)
    assert "changed" not in second.scopes
    assert second.account.name == owner.account.name


def test_an_account_without_a_version_is_remembered_too(owner: Tenant) -> None:
    """Versions exist once an account is written (and expire): none yet is a version too."""
    cache.delete(principal_version_key(owner.account.pk))
    _, raw = key_for(owner.account, "admin")
    client = client_for(raw)
    for _ in range(2):
        assert client.get("/v1/account").status_code == 200
    assert _key_queries(client) == (200, 0)
    _elsewhere(lambda: _rename(owner.account))
    assert client.get("/v1/account").json()["name"] == "Renamed"


def _copy_by_pickling(key: ApiKey) -> ApiKey:
    """How a request's copies were made before (copy.copy, then each value copied)."""
    import copy

    account = copy.copy(key.account)
    account.__dict__ = {k: copy.copy(v) for k, v in account.__dict__.items() if k != "_state"}
    account._state = copy.copy(key.account._state)
    account._state.fields_cache = {}
    mine = copy.copy(key)
    mine.__dict__ = {k: copy.copy(v) for k, v in key.__dict__.items() if k != "_state"}
    mine._state = copy.copy(key._state)
    mine._state.fields_cache = {}
    mine.account = account
    return mine


def _shape(instance: Any) -> tuple[Any, ...]:
    # (A pickled model carries the Django version it was pickled with: not a field.)
    values = {k: v for k, v in instance.__dict__.items() if k not in ("_state", "_django_version")}
    state = {k: v for k, v in instance._state.__dict__.items() if k != "fields_cache"}
    return type(instance), values, state, set(instance._state.fields_cache)


@pytest.mark.django_db(transaction=False)
@hypothesis.settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture],
)
@hypothesis.given(
    scopes=st.lists(st.sampled_from(["read", "send", "admin", "oversight"]), max_size=4),
    name=st.text(max_size=20),
    used=st.one_of(st.none(), st.datetimes(timezones=st.just(UTC))),
    stopped=st.booleans(),
    expiry=st.integers(min_value=0, max_value=10_000),
)
def test_copies_are_what_copying_by_pickling_gave(
    owner: Tenant, scopes: list[str], name: str, used: Any, stopped: bool, expiry: int
) -> None:
    """The copies are built without pickling: the same values, state and related rows, and
    nothing mutable shared with the remembered rows."""
    from multimail import authentication

    key, _ = key_for(owner.account, "read")
    remembered = ApiKey.objects.select_related("account").get(pk=key.pk)
    remembered.scopes, remembered.name, remembered.last_used_at = scopes, name, used
    remembered.account.sending_stopped = stopped
    remembered.account.approval_expiry_hours = expiry
    for mine, theirs in [
        (authentication._copy(remembered), _copy_by_pickling(remembered)) for _ in range(2)
    ]:
        assert _shape(mine) == _shape(theirs)
        assert _shape(mine.account) == _shape(theirs.account)
        assert mine.account is not remembered.account
        assert mine.scopes == remembered.scopes
        assert mine.scopes is not remembered.scopes
        mine.scopes.append("changed")
        mine.account.name = "changed"
        assert "changed" not in remembered.scopes
        assert remembered.account.name != "changed"
