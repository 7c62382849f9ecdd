"""The Idempotency-Key contract on POSTs."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import pytest
from django.db import OperationalError
from django.utils import timezone

from accounts.models import ApiKey
from multimail.idempotency import idempotency_hashes, idempotency_records_purge
from multimail.models import IdempotencyRecord
from tests.conftest import assert_error, client_for

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
    scope, key_hash = idempotency_hashes(credential=f"Bearer {raw}", key="abc")
    IdempotencyRecord.objects.create(
        scope=scope,
        key_hash=key_hash,
        fingerprint=hashlib.sha256(b"POST/v1/api-keys\n" + body).hexdigest(),
    )
    response = client_for(raw).post(
        "/v1/api-keys", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="abc"
    )
    error = assert_error(response, "idempotency_conflict")
    assert "in flight" in error["message"]
    assert not ApiKey.objects.filter(name="k").exists()


def test_a_claim_past_its_lease_is_taken_over_by_the_same_request(
    api: Any, owner: Any, settings: Any
) -> None:
    """The first request's process died before answering: the same request runs again."""
    from accounts.services import api_key_create

    _, raw = api_key_create(account=owner.account, name="t", scopes=["admin"])
    body = json.dumps({"name": "k"}).encode()
    scope, key_hash = idempotency_hashes(credential=f"Bearer {raw}", key="abc")
    stale = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_IN_FLIGHT_SECONDS + 1)
    IdempotencyRecord.objects.create(
        scope=scope,
        key_hash=key_hash,
        fingerprint=hashlib.sha256(b"POST/v1/api-keys\n" + body).hexdigest(),
        created_at=stale,
        claimed_at=stale,
    )
    other_body = client_for(raw).post(
        "/v1/api-keys", {"name": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="abc"
    )
    assert_error(other_body, "idempotency_conflict")
    response = client_for(raw).post(
        "/v1/api-keys", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="abc"
    )
    assert response.status_code == 201
    replay = client_for(raw).post(
        "/v1/api-keys", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="abc"
    )
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json() == response.json()


def test_after_24_hours_the_key_starts_anew_and_old_records_are_purged(api: Any) -> None:
    client = api("admin")
    first = client.post("/v1/api-keys", {"name": "k"}, format="json", HTTP_IDEMPOTENCY_KEY="old")
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=24, seconds=1))
    again = client.post("/v1/api-keys", {"name": "k"}, format="json", HTTP_IDEMPOTENCY_KEY="old")
    assert again.status_code == 201
    assert again.json()["id"] != first.json()["id"]
    assert "Idempotent-Replayed" not in again
    old = IdempotencyRecord.objects.get()
    client.post("/v1/api-keys", {"name": "j"}, format="json", HTTP_IDEMPOTENCY_KEY="other")
    IdempotencyRecord.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(days=2)
    )
    assert idempotency_records_purge() == 1
    assert not IdempotencyRecord.objects.filter(pk=old.pk).exists()
    assert IdempotencyRecord.objects.count() == 1


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
        raise OperationalError("database down")

    monkeypatch.setattr(IdempotencyRecord.objects, "create", down)
    response = client.post("/v1/api-keys", {"name": "k"}, format="json", HTTP_IDEMPOTENCY_KEY="x")
    assert_error(response, "service_unavailable")
