"""PostgreSQL connection loss: a 503 for the request that hit it, then recovery, no restart.

Only this test's own backend is terminated (its pid read from its own connection),
never another session.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from django.db import connection

from accounts.services import api_key_create
from multimail.authentication import ApiKeyAuthentication
from tests.conftest import make_tenant
from tests.reliability.conftest import wsgi_call

pytestmark = pytest.mark.django_db(transaction=True)


def _terminate_own_backend() -> None:
    """Drop this process's database session from the server side, as a failover would."""
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    params = connection.settings_dict
    with psycopg.connect(
        host=params["HOST"] or "localhost",
        port=params["PORT"] or 5432,
        user=params["USER"],
        password=params["PASSWORD"] or None,
        dbname=params["NAME"],
        autocommit=True,
    ) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])


def _assert_service_unavailable(response: Any) -> None:
    assert response.status_code == 503, response.content
    body = response.json()
    assert body["ok"] is False
    assert body["error"]["code"] == "service_unavailable"
    assert body["error"]["retryable"] is True
    assert body["meta"]["request_id"] == response["X-Request-Id"]
    assert int(response["Retry-After"]) >= 1
    # Nothing of the driver's error leaks into the answer.
    assert b"terminat" not in response.content.lower()
    assert b"psycopg" not in response.content.lower()


@pytest.fixture
def raw_key() -> str:
    tenant = make_tenant("dbfault")
    return api_key_create(account=tenant.account, name="fault", scopes=["admin"])[1]


def test_connection_dropped_between_requests_is_replaced_transparently(raw_key: str) -> None:
    assert wsgi_call("GET", "/v1/account", key=raw_key).status_code == 200
    _terminate_own_backend()
    # CONN_HEALTH_CHECKS: the first use in the next request notices the dead connection
    # and opens a new one, so the client never sees the failover.
    assert wsgi_call("GET", "/v1/account", key=raw_key).status_code == 200


def test_connection_dropped_mid_request_answers_503_then_recovers(
    raw_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert wsgi_call("GET", "/v1/account", key=raw_key).status_code == 200
    original = ApiKeyAuthentication.authenticate
    dropped: list[bool] = []

    def authenticate_then_drop(self: ApiKeyAuthentication, request: Any) -> Any:
        result = original(self, request)
        # The request has used its (health-checked) connection; the server goes away now,
        # before the view's own queries.
        if not dropped:
            dropped.append(True)
            _terminate_own_backend()
        return result

    monkeypatch.setattr(ApiKeyAuthentication, "authenticate", authenticate_then_drop)
    _assert_service_unavailable(wsgi_call("GET", "/v1/account", key=raw_key))
    # Same process, no restart: the broken connection was discarded at the end of the
    # failed request and the next one connects afresh.
    recovered = wsgi_call("GET", "/v1/account", key=raw_key)
    assert recovered.status_code == 200, recovered.content
    assert recovered.json()["slug"] == "dbfault"
