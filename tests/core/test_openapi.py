"""The OpenAPI schema generates, validates, and is served."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client


def test_schema_validates_without_warnings(tmp_path: Path) -> None:
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    assert "/v1/account" in target.read_text()


@pytest.mark.django_db
def test_schema_is_served(client: Client) -> None:
    response = client.get("/v1/openapi.json")
    assert response.status_code == 200
    assert "json" in response["Content-Type"]
    paths = json.loads(response.content)["paths"]
    for path in ("/v1/account", "/v1/api-keys", "/v1/audit-log", "/v1/confirm"):
        assert path in paths
