"""The Idempotency-Key contract on POSTs."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from django.core.cache import cache

from accounts.models import ApiKey
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db


def test_replay_returns_the_same_body_without_a_second_write(api: Any) -> None:
    client = api("admin")
    first = client.post("/v1/api-keys", {"name": "k"}, format="json", HTTP_IDEMPOTENCY_KEY="abc")
    second = client.post("/v1/api-keys", {"name": "k"}, format="json", HTTP_IDEMPOTENCY_KEY="abc")
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert ApiKey.objects.filter(name="k").count() == 1


def test_same_key_different_body_is_conflict(api: Any) -> None:
    client = api("admin")
    client.post("/v1/api-keys", {"name": "k"}, format="json", HTTP_IDEMPOTENCY_KEY="abc")
    response = client.post(
        "/v1/api-keys", {"name": "other"}, format="json", HTTP_IDEMPOTENCY_KEY="abc"
    )
    assert_error(response, "idempotency_conflict", param="Idempotency-Key")


def test_in_flight_request_is_conflict(api: Any, owner: Any) -> None:
    from accounts.services import api_key_create

    _, raw = api_key_create(account=owner.account, name="t", scopes=["admin"])
    body = json.dumps({"name": "k"}).encode()
    # What the middleware stores while the first request runs.
    scope = hashlib.sha256(f"Bearer {raw}".encode()).hexdigest()[:32]
    fingerprint = hashlib.sha256(b"POST/v1/api-keys\n" + body).hexdigest()
    cache.set(
        f"idem:{scope}:{hashlib.sha256(b'abc').hexdigest()}",
        {"state": "in_flight", "fp": fingerprint},
        60,
    )
    from tests.conftest import client_for

    response = client_for(raw).post(
        "/v1/api-keys", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="abc"
    )
    error = assert_error(response, "idempotency_conflict")
    assert "in flight" in error["message"]


def test_keys_are_scoped_to_the_credential(api: Any) -> None:
    first = api("admin").post(
        "/v1/api-keys", {"name": "k"}, format="json", HTTP_IDEMPOTENCY_KEY="abc"
    )
    second = api("admin").post(
        "/v1/api-keys", {"name": "k"}, format="json", HTTP_IDEMPOTENCY_KEY="abc"
    )
    assert first.json()["id"] != second.json()["id"]


def test_errors_are_stored_too_but_not_rate_limits(api: Any) -> None:
    client = api("admin")
    bad = client.post("/v1/api-keys", {}, format="json", HTTP_IDEMPOTENCY_KEY="e")
    again = client.post("/v1/api-keys", {}, format="json", HTTP_IDEMPOTENCY_KEY="e")
    assert bad.status_code == again.status_code == 400
    assert again["Idempotent-Replayed"] == "true"


def test_overlong_key_is_invalid(api: Any) -> None:
    response = api("admin").post(
        "/v1/api-keys", {"name": "k"}, format="json", HTTP_IDEMPOTENCY_KEY="x" * 256
    )
    assert_error(response, "invalid_parameter", param="Idempotency-Key")


def test_unreachable_store_is_service_unavailable(
    api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = api("admin")

    def down(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, "add", down)
    response = client.post("/v1/api-keys", {"name": "k"}, format="json", HTTP_IDEMPOTENCY_KEY="x")
    assert_error(response, "service_unavailable")
