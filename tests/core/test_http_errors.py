"""Envelope for protocol-level errors: 405, 415, bad JSON, 500, and request ids."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.conftest import assert_error, key_for

pytestmark = pytest.mark.django_db


def test_method_not_allowed_lists_the_allowed_methods(api: Any) -> None:
    response = api("admin").put("/v1/account", {}, format="json")
    error = assert_error(response, "method_not_allowed")
    assert {"GET", "PATCH", "DELETE", "POST"} <= set(error["allowed"])
    assert "PATCH" in response["Allow"]


def test_method_not_allowed_on_public_path() -> None:
    error = assert_error(APIClient().delete("/v1/account/challenge"), "method_not_allowed")
    assert "POST" in error["allowed"]


def test_non_json_body_is_unsupported_media_type(api: Any) -> None:
    response = api("admin").post("/v1/api-keys", "name=k", content_type="text/plain")
    assert_error(response, "unsupported_media_type")


def test_bad_json_is_invalid_parameter(api: Any) -> None:
    response = api("admin").post("/v1/api-keys", "{not json", content_type="application/json")
    assert_error(response, "invalid_parameter", param="body")


def test_json_that_is_not_an_object(api: Any) -> None:
    response = api("admin").post("/v1/api-keys", "[1, 2]", content_type="application/json")
    assert_error(response, "invalid_parameter")


def test_unhandled_exception_is_internal_error_without_a_trace(
    owner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(**kwargs: Any) -> None:
        raise RuntimeError("secret detail /srv/app/file.py SELECT * FROM x")

    monkeypatch.setattr("accounts.selectors.account_info", explode)
    _, raw = key_for(owner.account, "read")
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = client.get("/v1/account", HTTP_X_REQUEST_ID="trace-500")
    error = assert_error(response, "internal_error")
    text = response.content.decode()
    assert "secret detail" not in text
    assert "Traceback" not in text
    assert error["retryable"] is True
    assert response.json()["meta"]["request_id"] == "trace-500"


def test_request_id_on_success_and_error(api: Any) -> None:
    ok = api("read").get("/v1/account")
    assert ok["X-Request-Id"].startswith("req_")
    failed = APIClient().get("/v1/account", HTTP_X_REQUEST_ID="abc-123")
    assert failed["X-Request-Id"] == "abc-123"
    assert failed.json()["meta"]["request_id"] == "abc-123"
