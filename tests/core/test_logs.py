"""Every log line written during a request names the request; production logs are JSON."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.test import Client

from multimail.logs import JsonFormatter, RequestIdFilter


def test_a_line_logged_inside_a_request_carries_its_request_id(
    api: Any, caplog: pytest.LogCaptureFixture, settings: Any
) -> None:
    settings.LOG_FORMAT = "json"
    caplog.handler.addFilter(RequestIdFilter())
    with caplog.at_level(logging.INFO):
        response = api("read").get("/v1/account", HTTP_X_REQUEST_ID="trace-me-1")
    assert response.status_code == 200
    lines = [r for r in caplog.records if r.name == "multimail.requests"]
    assert lines
    assert lines[-1].request_id == "trace-me-1"
    assert "route=/v1/account status=200" in lines[-1].getMessage()


def test_json_lines() -> None:
    record = logging.LogRecord("multimail.api", logging.WARNING, __file__, 1, "x=%s", ("1",), None)
    RequestIdFilter().filter(record)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "multimail.api"
    assert entry["message"] == "x=1"
    assert entry["request_id"] is None  # outside a request
    assert entry["time"].endswith("+00:00")


@pytest.mark.django_db
def test_the_home_page_links_what_a_newcomer_needs() -> None:
    body = Client().get("/").content.decode()
    for link in ("/console/", "/v1/openapi.json", "/docs/errors", "/health"):
        assert f'href="{link}"' in body
