"""The error envelope outside DRF, request ids, health and the error docs page."""

from __future__ import annotations

import pytest
from django.test import Client

from multimail.errors import REGISTRY
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db


def test_unknown_api_path_is_not_found_envelope(client: Client) -> None:
    response = client.get("/v1/no-such-thing")
    assert_error(response, "not_found")


def test_request_id_is_generated_and_echoed(client: Client) -> None:
    generated = client.get("/health")
    assert generated["X-Request-Id"].startswith("req_")
    echoed = client.get("/health", HTTP_X_REQUEST_ID="trace-123.abc")
    assert echoed["X-Request-Id"] == "trace-123.abc"
    unsafe = client.get("/health", HTTP_X_REQUEST_ID="bad id with spaces")
    assert unsafe["X-Request-Id"].startswith("req_")


def test_health_reports_dependencies(client: Client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_body_over_limit_is_payload_too_large(client: Client, settings) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response = client.post("/v1/account", data="x" * 200, content_type="application/json")
    assert_error(response, "payload_too_large", limit_bytes=100)


def test_error_docs_have_an_anchor_per_code(client: Client) -> None:
    html = client.get("/docs/errors").content.decode()
    for code in REGISTRY:
        assert f'id="{code}"' in html
