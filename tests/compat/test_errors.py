"""Errors at the compat base URL have MultiMail's shape; /v1 keeps the envelope.

Every catalog code, raised from a plain view or a DRF view, renders as
``{"error": message, "code": code, ...every detail of the envelope at the top level}``; so do
the errors answered by middleware and by DRF's machinery (authentication, throttles, body
parsing, idempotency, unknown paths, body size, region block).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client, override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from mailboxes.models import Mailbox
from multimail.errors import REGISTRY
from tests.conftest import Tenant, assert_error, client_for, key_for

pytestmark = pytest.mark.django_db

COMPAT = "/compat/multimail"
CODES = sorted(REGISTRY)


def assert_compat_error(response: Any, code: str, **extra: Any) -> dict[str, Any]:
    """Check MultiMail's error shape and return the body."""
    entry = REGISTRY[code]
    assert response.status_code == entry.status, (response.status_code, response.content[:500])
    body = response.json()
    assert isinstance(body["error"], str)
    assert body["error"]
    assert body["code"] == code
    assert body["retryable"] is entry.is_retryable
    assert body["doc_url"].endswith(f"/docs/errors#{code}")
    assert body["request_id"] == response["X-Request-Id"]
    assert "ok" not in body
    assert "meta" not in body
    for key, value in extra.items():
        assert body.get(key) == value, (key, body)
    if entry.status in (429, 503) and entry.is_retryable:
        assert int(response["Retry-After"]) >= 1
    return body


def moved_to_top(envelope: dict[str, Any], fix: str) -> dict[str, Any]:
    """The compat body that stands for an envelope: the message as ``error``, the rest of
    ``error`` and the request id beside it, and the catalog's fix as ``hint``."""
    detail = dict(envelope["error"])
    message = detail.pop("message")
    return {
        "error": message,
        **detail,
        "hint": detail.get("hint", fix),
        "request_id": envelope["meta"]["request_id"],
    }


def sample_extra(code: str) -> dict[str, Any]:
    return {key: f"sample-{key}" for key in REGISTRY[code].extra_keys if key != "errors"}


@pytest.mark.urls("tests.compat.urls")
@pytest.mark.parametrize("kind", ["django", "drf"])
@pytest.mark.parametrize("code", CODES)
def test_every_catalog_code_renders_in_the_compat_shape(
    client: Client, code: str, kind: str
) -> None:
    extra = sample_extra(code)
    errors = [{"field": "to.0", "code": "invalid", "message": "Not an address."}]
    request = {"code": code, "extra": extra}
    if "errors" in REGISTRY[code].extra_keys:
        request["errors"] = errors
    compat = client.post(
        f"{COMPAT}/v1/test-raise/{kind}", json.dumps(request), content_type="application/json"
    )
    body = assert_compat_error(compat, code, **extra)
    assert body["hint"] == REGISTRY[code].fix
    if "errors" in request:
        assert body["errors"] == errors
        assert body["param"] == "to.0"
    # /v1 answers the same error in the envelope, untouched.
    envelope = client.post(
        f"/v1/test-raise/{kind}", json.dumps(request), content_type="application/json"
    )
    assert_error(envelope, code, **extra)


detail_values = st.one_of(
    st.integers(), st.text(max_size=30), st.lists(st.text(max_size=10), max_size=3), st.none()
)


@st.composite
def raised_errors(draw: st.DrawFn) -> dict[str, Any]:
    code = draw(st.sampled_from(CODES))
    keys = [key for key in REGISTRY[code].extra_keys if key != "errors"]
    body: dict[str, Any] = {
        "code": code,
        "message": draw(st.none() | st.text(min_size=1, max_size=80)),
        "param": draw(st.none() | st.from_regex(r"[a-z_]{1,12}(\.[0-9])?", fullmatch=True)),
        "extra": {key: draw(detail_values) for key in keys},
    }
    if "errors" in REGISTRY[code].extra_keys and draw(st.booleans()):
        body["errors"] = [
            {"field": f"field{index}", "code": "invalid", "message": draw(st.text(max_size=20))}
            for index in range(draw(st.integers(1, 3)))
        ]
    if REGISTRY[code].status == 429:
        body["headers"] = {"Retry-After": str(draw(st.integers(1, 86400)))}
    return body


@pytest.mark.urls("tests.compat.urls")
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=raised_errors(), kind=st.sampled_from(["django", "drf"]))
def test_compat_body_is_the_envelope_with_its_details_at_the_top(
    client: Client, request: dict[str, Any], kind: str
) -> None:
    """Whatever the message and details, the compat body holds exactly the envelope's
    fields (moved to the top level) and the same status and headers."""
    answers = [
        client.post(
            f"{prefix}/v1/test-raise/{kind}",
            json.dumps(request),
            content_type="application/json",
            headers={"X-Request-Id": "req-property"},
        )
        for prefix in ("", COMPAT)
    ]
    envelope, compat = answers
    assert compat.status_code == envelope.status_code == REGISTRY[request["code"]].status
    assert compat.json() == moved_to_top(envelope.json(), REGISTRY[request["code"]].fix)
    for header in ("X-Request-Id", "Retry-After"):
        assert compat.get(header) == envelope.get(header)


# --- errors answered outside the views ----------------------------------------------------


def test_done_when_send_from_an_unknown_mailbox(api: Any) -> None:
    response = api("send").post(
        f"{COMPAT}/v1/mailboxes/not-a-mailbox/send",
        {"to": ["a@example.com"], "subject": "Hi", "markdown": "Hi"},
        format="json",
    )
    body = assert_compat_error(response, "not_found", resource="mailbox")
    assert body["error"] == "That mailbox does not exist in this account."


def test_authentication(owner: Tenant) -> None:
    anonymous = APIClient()
    body = assert_compat_error(anonymous.get(f"{COMPAT}/v1/account"), "authentication_required")
    assert "Authorization: Bearer" in body["error"]
    assert_compat_error(
        client_for("mm_live_" + "x" * 40).get(f"{COMPAT}/v1/account"), "invalid_api_key"
    )
    assert_error(anonymous.get("/v1/account"), "authentication_required")


def test_scope_refusal(api: Any) -> None:
    response = api("read").post(f"{COMPAT}/v1/api-keys", {"name": "k"}, format="json")
    assert_compat_error(response, "insufficient_permissions", required_scope="admin")


def test_throttle_keeps_retry_after(owner: Tenant) -> None:
    _, raw = key_for(owner.account, "read")
    client = client_for(raw)
    with override_settings(API_RATE_LIMIT_READ_PER_MINUTE=1):
        client.get(f"{COMPAT}/v1/mailboxes")
        response = client.get(f"{COMPAT}/v1/mailboxes")
    assert_compat_error(response, "rate_limit_exceeded", limit_type="read")


def test_unknown_path_and_method(api: Any) -> None:
    client = api("admin")
    assert_compat_error(client.get(f"{COMPAT}/v1/no-such-thing"), "not_found")
    body = assert_compat_error(
        client.put(f"{COMPAT}/v1/account", {}, format="json"), "method_not_allowed"
    )
    assert "PATCH" in body["allowed"]


def test_body_parsing(api: Any) -> None:
    client = api("admin", "send")
    bad_json = client.post(f"{COMPAT}/v1/api-keys", "{oops", content_type="application/json")
    assert_compat_error(bad_json, "invalid_parameter", param="body")
    not_json = client.post(f"{COMPAT}/v1/api-keys", "name=k", content_type="text/plain")
    assert_compat_error(not_json, "unsupported_media_type")
    missing = client.post(f"{COMPAT}/v1/contacts", {"email": "a@example.com"}, format="json")
    assert_compat_error(missing, "missing_parameter", param="name")


def test_body_over_the_limit(api: Any, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response = api("admin").post(f"{COMPAT}/v1/api-keys", {"name": "k" * 500}, format="json")
    assert_compat_error(response, "payload_too_large", limit_bytes=100)


def test_idempotency_conflict(api: Any) -> None:
    client = api("send")
    url = f"{COMPAT}/v1/contacts"
    headers = {"Idempotency-Key": "contact-1"}
    first = client.post(
        url, {"name": "A", "email": "a@example.com"}, format="json", headers=headers
    )
    assert first.status_code == 201
    other = client.post(
        url, {"name": "B", "email": "b@example.com"}, format="json", headers=headers
    )
    assert_compat_error(other, "idempotency_conflict", param="Idempotency-Key")


def test_region_block(client: Client, settings: Any) -> None:
    settings.REGION_HEADER = "CF-IPCountry"
    response = client.get(f"{COMPAT}/v1/account", headers={"CF-IPCountry": "KP"})
    assert_compat_error(response, "region_blocked")


def test_internal_error_hides_the_cause(owner: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(**kwargs: Any) -> None:
        raise RuntimeError("secret detail /srv/app/file.py")

    monkeypatch.setattr("accounts.selectors.account_info", explode)
    _, raw = key_for(owner.account, "read")
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = client.get(f"{COMPAT}/v1/account")
    assert_compat_error(response, "internal_error")
    assert "secret detail" not in response.content.decode()


# --- success bodies -----------------------------------------------------------------------


def test_success_bodies_and_headers_are_the_same(api: Any) -> None:
    client = api("admin")
    direct = client.get("/v1/account", headers={"X-Request-Id": "req-same"})
    compat = client.get(f"{COMPAT}/v1/account", headers={"X-Request-Id": "req-same"})
    assert compat.status_code == direct.status_code == 200
    assert compat.json() == direct.json()
    assert compat["X-Request-Id"] == "req-same"


def test_sdk_list_names_beside_the_spec_names_only_at_the_compat_base_url(
    owner: Tenant, api: Any
) -> None:
    Mailbox.objects.filter(pk=owner.mailbox.pk).update(oversight_mode="gated_send")
    client = api("oversight")
    compat = client.get(f"{COMPAT}/v1/oversight/pending").json()
    assert compat["pending"] == compat["emails"]
    assert "cursor" in compat
    assert "pending" not in client.get("/v1/oversight/pending").json()
    admin = api("admin")
    hooks = admin.get(f"{COMPAT}/v1/webhooks").json()
    assert hooks["webhooks"] == hooks["subscriptions"] == []
    assert "webhooks" not in admin.get("/v1/webhooks").json()


def test_schema_describes_v1_only(client: Client) -> None:
    paths = client.get("/v1/openapi.json").json()["paths"]
    assert "/v1/account" in paths
    assert not [item for item in paths if item.startswith("/compat")]
