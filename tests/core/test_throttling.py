"""Per-key read and send budgets."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import assert_error

pytestmark = pytest.mark.django_db


def test_read_budget(api: Any, settings: Any) -> None:
    settings.API_RATE_LIMIT_READ_PER_MINUTE = 2
    client = api("admin")
    for _ in range(2):
        assert client.get("/v1/account").status_code == 200
    response = client.get("/v1/account")
    assert_error(response, "rate_limit_exceeded", limit_type="read")
    assert 1 <= int(response["Retry-After"]) <= 60
    # Writes have their own budget.
    assert client.post("/v1/api-keys", {"name": "k"}, format="json").status_code == 201


def test_send_budget(api: Any, settings: Any) -> None:
    settings.API_RATE_LIMIT_SEND_PER_MINUTE = 1
    client = api("admin")
    assert client.post("/v1/api-keys", {"name": "a"}, format="json").status_code == 201
    response = client.post("/v1/api-keys", {"name": "b"}, format="json")
    assert_error(response, "rate_limit_exceeded", limit_type="send")
    assert client.get("/v1/account").status_code == 200


def test_budgets_are_per_key(api: Any, settings: Any) -> None:
    settings.API_RATE_LIMIT_READ_PER_MINUTE = 1
    first, second = api("read"), api("read")
    assert first.get("/v1/account").status_code == 200
    assert_error(first.get("/v1/account"), "rate_limit_exceeded")
    assert second.get("/v1/account").status_code == 200
