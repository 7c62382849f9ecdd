"""API-key authentication and scopes, through GET /v1/account and /v1/api-keys."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.conftest import assert_error, client_for, key_for

pytestmark = pytest.mark.django_db


def test_no_credentials_is_authentication_required() -> None:
    assert_error(APIClient().get("/v1/account"), "authentication_required")


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer not-a-key", "Token x"])
def test_malformed_header_is_authentication_required(header: str) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert_error(client.get("/v1/account"), "authentication_required")


def test_unknown_key_is_invalid(owner: Any) -> None:
    assert_error(client_for("mm_live_" + "x" * 40).get("/v1/account"), "invalid_api_key")


def test_right_prefix_wrong_secret_is_invalid(owner: Any) -> None:
    _, raw = key_for(owner.account, "read")
    assert_error(client_for(raw[:-4] + "zzzz").get("/v1/account"), "invalid_api_key")


def test_revoked_key_is_invalid(owner: Any) -> None:
    key, raw = key_for(owner.account, "read")
    key.is_active = False
    key.save()
    error = assert_error(client_for(raw).get("/v1/account"), "invalid_api_key")
    assert "revoked" in error["message"]


def test_x_api_key_header_works(owner: Any) -> None:
    _, raw = key_for(owner.account, "read")
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=raw)
    assert client.get("/v1/account").status_code == 200


@pytest.mark.parametrize(
    ("scopes", "path", "required"),
    [
        (("send",), "/v1/account", "read"),
        (("read",), "/v1/api-keys", "admin"),
        (("oversight",), "/v1/audit-log", "admin"),
    ],
)
def test_missing_scope_names_the_required_scope(
    owner: Any, scopes: tuple[str, ...], path: str, required: str
) -> None:
    _, raw = key_for(owner.account, *scopes)
    assert_error(client_for(raw).get(path), "insufficient_permissions", required_scope=required)


def test_admin_includes_read(api: Any) -> None:
    assert api("admin").get("/v1/account").status_code == 200
