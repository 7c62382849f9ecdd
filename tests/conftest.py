"""Personas and factories shared by the whole suite.

``owner`` is an activated account with an operator and a mailbox; ``other`` is a second
tenant used to prove isolation. ``api`` builds an HTTP client authenticated with a fresh
key of the given scopes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Account, AccountState, ApiKey, Operator
from accounts.services import api_key_create
from mailboxes.models import Mailbox
from mailboxes.services import netguard
from multimail import ratelimit
from multimail.errors import REGISTRY


@dataclass
class Tenant:
    account: Account
    operator: Operator
    mailbox: Mailbox


def make_tenant(slug: str, *, plan: str = "starter", mode: str = "autonomous") -> Tenant:
    account = Account.objects.create(
        name=f"{slug.title()} Org",
        slug=slug,
        oversight_email=f"ops@{slug}.example",
        plan=plan,
        state=AccountState.ACTIVE,
        activated_at=timezone.now(),
        require_operator_approval=False,
    )
    user = get_user_model().objects.create_user(
        username=f"ops@{slug}.example", email=f"ops@{slug}.example"
    )
    operator = Operator.objects.create(
        account=account, user=user, email=user.email, name="Operator"
    )
    mailbox = Mailbox.objects.create(
        account=account, address=f"agent@{slug}.multimail.localhost", oversight_mode=mode
    )
    return Tenant(account=account, operator=operator, mailbox=mailbox)


def on_annual_pro(account: Account, *, period_start: datetime) -> None:
    """Put ``account`` on an active annual Pro subscription whose period began at
    ``period_start``: its quotas then count from there, not from its creation."""
    from billing.models import Subscription

    Subscription.objects.create(
        account=account,
        plan="pro",
        status="active",
        interval="annual",
        current_period_start=period_start,
        current_period_end=period_start + timedelta(days=365),
    )
    Account.objects.filter(pk=account.pk).update(plan="pro")


@pytest.fixture(autouse=True)
def _rate_windows_start_with_the_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rate limits count in fixed windows; a test that straddled a window boundary would see
    its counter reset half-way. Each test runs from the start of a day-aligned window
    (aligned to every window length), with the clock moving at its real pace."""
    origin = time.time()
    aligned = (int(origin) // 86400 + 1) * 86400
    monkeypatch.setattr(ratelimit, "_now", lambda: aligned + (time.time() - origin))


@pytest.fixture(autouse=True)
def _principals_from_the_database(settings: Any) -> None:
    """A test runs in a transaction that never commits, so the principal version that a
    write replaces on commit (accounts.principals) is never replaced: a remembered principal
    would outlive the test's own changes of its account or key. Authentication reads the key
    every time here; tests/core/test_principal_cache.py covers the remembered principal,
    with writes that commit."""
    settings.API_PRINCIPAL_CACHE_SECONDS = 0


@pytest.fixture(autouse=True)
def _clear_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def public_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every host name resolves to one public address, without real DNS (there is no
    network here): outgoing URLs pass the guard unless their form is refused."""
    monkeypatch.setattr(netguard, "resolve_addresses", lambda host, port: ["93.184.216.34"])


@pytest.fixture
def owner(db: Any) -> Tenant:
    return make_tenant("acme")


@pytest.fixture
def other(db: Any) -> Tenant:
    return make_tenant("globex")


def client_for(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture
def api(owner: Tenant) -> Callable[..., APIClient]:
    """``api("read", "send")``: a client for the owner with a new key of those scopes."""

    def build(*scopes: str, account: Account | None = None) -> APIClient:
        _, raw = api_key_create(
            account=account or owner.account, name="test", scopes=list(scopes or ("admin",))
        )
        return client_for(raw)

    return build


def key_for(account: Account, *scopes: str) -> tuple[ApiKey, str]:
    return api_key_create(account=account, name="test", scopes=list(scopes))


def assert_error(response: Any, code: str, *, param: str | None = None, **extra: Any) -> dict:
    """Check the whole envelope of an error response and return its ``error`` object."""
    entry = REGISTRY[code]
    assert response.status_code == entry.status, (response.status_code, response.content[:500])
    body = response.json()
    assert body["ok"] is False
    error = body["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str)
    assert error["message"]
    assert error["doc_url"].endswith(f"/docs/errors#{code}")
    assert error["retryable"] is entry.is_retryable
    assert body["meta"]["request_id"] == response["X-Request-Id"]
    if param is not None:
        assert error.get("param") == param, error
    for key, value in extra.items():
        assert error.get(key) == value, (key, error)
    if entry.status in (429, 503) and entry.is_retryable:
        assert int(response["Retry-After"]) >= 1
    return error


def start_and_join(threads: list[threading.Thread], *, timeout: float) -> None:
    """Run the threads of a concurrency test together and wait for every one."""
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)


def wait_for(
    check: Callable[[], Any], timeout: float = 40.0, *, interval: float = 0.2, what: str = "it"
) -> Any:
    """Poll ``check`` until it returns something true (and return that), for tests that
    wait on another process: a worker, a live server, ``make run``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def database_dsn() -> str:
    """The test database, for a connection of a test's own (a peer that checks which rows
    another transaction holds locked)."""
    settings_dict = connection.settings_dict
    return psycopg.conninfo.make_conninfo(
        dbname=settings_dict["NAME"],
        user=settings_dict.get("USER") or "postgres",
        password=settings_dict.get("PASSWORD") or None,
        host=settings_dict.get("HOST") or "localhost",
        port=settings_dict.get("PORT") or 5432,
    )
