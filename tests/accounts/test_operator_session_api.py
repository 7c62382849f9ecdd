"""The API's operator-session endpoints: start, verify, session, end."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from tests.conftest import assert_error

CODE = re.compile(r"\b([A-Z2-9]{3}-[A-Z2-9]{3}-[A-Z2-9]{3})\b")


def start(client) -> str:
    mail.outbox.clear()
    response = client.post("/v1/operator/start-session", {}, format="json")
    assert response.status_code == 202
    assert response.json() == {"status": "code_sent", "masked_email": "o**@acme.example"}
    return CODE.search(mail.outbox[-1].body).group(1)


@pytest.mark.django_db(transaction=True)
def test_start_verify_session_end(owner, api):
    client = api("admin")
    assert client.get("/v1/operator/session").json() == {
        "active": False,
        "expires_at": None,
        "max_tier": None,
    }
    code = start(client)
    assert mail.outbox[-1].to == [owner.account.oversight_email]
    response = client.post("/v1/operator/verify-session", {"code": code}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "active"
    assert isinstance(body["expires_at"], int)
    cookie = response.cookies["sessionid"]
    assert cookie["httponly"]
    session = client.get("/v1/operator/session").json()
    assert session["active"] is True
    assert session["max_tier"] == "medium"
    # The cookie is the console's own session.
    assert client.get("/console/").status_code == 200
    ended = client.post("/v1/operator/end-session", {}, format="json")
    assert ended.json() == {"status": "ended"}
    assert client.get("/v1/operator/session").json()["active"] is False


@pytest.mark.django_db(transaction=True)
def test_wrong_code_is_a_validation_error(owner, api):
    client = api("admin")
    start(client)
    response = client.post("/v1/operator/verify-session", {"code": "AAA-AAA-AAA"}, format="json")
    assert_error(response, "validation_error", param="code")


def test_no_pending_code_is_not_found(owner, api):
    response = api("admin").post(
        "/v1/operator/verify-session", {"code": "AAA-AAA-AAA"}, format="json"
    )
    assert_error(response, "not_found", resource="account")


def test_missing_code(owner, api):
    response = api("admin").post("/v1/operator/verify-session", {}, format="json")
    assert_error(response, "missing_parameter", param="code")


@pytest.mark.django_db(transaction=True)
def test_too_many_wrong_codes(owner, api):
    client = api("admin")
    start(client)
    for _ in range(5):
        client.post("/v1/operator/verify-session", {"code": "AAA-AAA-AAA"}, format="json")
    response = client.post("/v1/operator/verify-session", {"code": "AAA-AAA-AAA"}, format="json")
    assert_error(response, "too_many_attempts")


@pytest.mark.django_db(transaction=True)
def test_start_is_rate_limited(owner, api):
    client = api("admin")
    for _ in range(5):
        start(client)
    response = client.post("/v1/operator/start-session", {}, format="json")
    assert_error(response, "rate_limit_exceeded", limit_type="console_login")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/v1/operator/start-session"),
        ("post", "/v1/operator/verify-session"),
        ("post", "/v1/operator/end-session"),
        ("get", "/v1/operator/session"),
    ],
)
def test_admin_scope_required(owner, api, client, method, path):
    response = getattr(api("read"), method)(path, {}, format="json")
    assert_error(response, "insufficient_permissions", required_scope="admin")
    anonymous = getattr(client, method)(path)
    assert_error(anonymous, "authentication_required")
