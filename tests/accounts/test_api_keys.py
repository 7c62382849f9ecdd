"""GET/POST /v1/api-keys, PATCH/DELETE /v1/api-keys/{id}."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import ApiKey, AuditEntry
from tests.accounts.test_account import approval_code
from tests.conftest import assert_error, client_for, key_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def gated(owner: Any) -> Any:
    owner.account.require_operator_approval = True
    owner.account.save(update_fields=["require_operator_approval"])
    return owner


def test_create_returns_the_raw_key_once(api: Any, owner: Any) -> None:
    client = api("admin")
    response = client.post("/v1/api-keys", {"name": "worker"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "api_key", "prefix", "name", "scopes"}
    assert body["scopes"] == ["read"]
    assert body["api_key"].startswith(body["prefix"])
    assert client_for(body["api_key"]).get("/v1/account").status_code == 200
    listed = client.get("/v1/api-keys").json()
    assert body["api_key"] not in str(listed)
    assert any(item["id"] == body["id"] for item in listed["api_keys"])
    assert AuditEntry.objects.filter(action="api_key.created", resource_id=body["id"]).exists()


def test_list_shape(api: Any) -> None:
    body = api("admin").get("/v1/api-keys").json()
    (item,) = body["api_keys"]
    assert set(item) == {
        "id",
        "name",
        "prefix",
        "scopes",
        "created_at",
        "last_used_at",
        "is_active",
    }
    assert body["cursor"] is None


def test_list_query_count_does_not_grow(
    api: Any, owner: Any, django_assert_max_num_queries: Any
) -> None:
    client = api("admin")
    client.get("/v1/api-keys")  # warm: last_used_at is written on first use
    for _ in range(9):
        key_for(owner.account, "read")
    with django_assert_max_num_queries(2):
        small = client.get("/v1/api-keys?limit=2")
    with django_assert_max_num_queries(2):
        large = client.get("/v1/api-keys?limit=10")
    assert len(small.json()["api_keys"]) == 2
    assert len(large.json()["api_keys"]) == 10
    next_page = client.get(f"/v1/api-keys?limit=2&cursor={small.json()['cursor']}").json()
    assert {k["id"] for k in next_page["api_keys"]}.isdisjoint(
        {k["id"] for k in small.json()["api_keys"]}
    )


def test_missing_name(api: Any) -> None:
    assert_error(
        api("admin").post("/v1/api-keys", {}, format="json"), "missing_parameter", param="name"
    )


def test_unknown_scope(api: Any) -> None:
    response = api("admin").post(
        "/v1/api-keys", {"name": "x", "scopes": ["read", "root"]}, format="json"
    )
    assert_error(response, "invalid_parameter", param="scopes")


@pytest.mark.parametrize("oversight", ["oversight", "oversight_read"])
def test_send_with_oversight_is_refused(api: Any, oversight: str) -> None:
    response = api("admin").post(
        "/v1/api-keys", {"name": "x", "scopes": ["send", oversight]}, format="json"
    )
    assert_error(response, "validation_error", param="scopes")


def test_key_count_is_limited_by_plan(api: Any, owner: Any) -> None:
    client = api("admin")
    for _ in range(9):
        key_for(owner.account, "read")
    response = client.post("/v1/api-keys", {"name": "one too many"}, format="json")
    assert_error(response, "limit_exceeded", limit=10, plan="starter")


def test_needs_admin_scope(api: Any) -> None:
    assert_error(
        api("read").get("/v1/api-keys"), "insufficient_permissions", required_scope="admin"
    )


def test_revoke(api: Any, owner: Any) -> None:
    key, raw = key_for(owner.account, "read")
    client = api("admin")
    response = client.delete(f"/v1/api-keys/{key.pk}")
    assert response.status_code == 200
    assert response.json() == {"status": "revoked"}
    assert_error(client_for(raw).get("/v1/account"), "invalid_api_key")
    assert client.delete(f"/v1/api-keys/{key.pk}").json() == {"status": "revoked"}
    assert AuditEntry.objects.filter(action="api_key.revoked").count() == 1


def test_update_name_and_scopes(api: Any, owner: Any) -> None:
    key, _ = key_for(owner.account, "read")
    response = api("admin").patch(
        f"/v1/api-keys/{key.pk}", {"name": "renamed", "scopes": ["read", "send"]}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "updated"
    assert body["scopes"] == ["read", "send"]
    key.refresh_from_db()
    assert key.name == "renamed"


def test_update_to_send_and_oversight_is_refused(api: Any, owner: Any) -> None:
    key, _ = key_for(owner.account, "send")
    response = api("admin").patch(
        f"/v1/api-keys/{key.pk}", {"scopes": ["send", "oversight"]}, format="json"
    )
    assert_error(response, "validation_error", param="scopes")


def test_revoked_key_cannot_be_updated(api: Any, owner: Any) -> None:
    key, _ = key_for(owner.account, "read")
    client = api("admin")
    client.delete(f"/v1/api-keys/{key.pk}")
    response = client.patch(f"/v1/api-keys/{key.pk}", {"name": "x"}, format="json")
    assert_error(response, "conflict")


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_other_tenants_key_is_not_found(api: Any, other: Any, method: str) -> None:
    foreign, raw = key_for(other.account, "read")
    response = getattr(api("admin"), method)(
        f"/v1/api-keys/{foreign.pk}", {"name": "x"}, format="json"
    )
    assert_error(response, "not_found", resource="api_key")
    assert ApiKey.objects.get(pk=foreign.pk).is_active
    assert client_for(raw).get("/v1/account").json()["slug"] == "globex"


def test_create_with_agent_key_needs_approval(
    gated: Any, api: Any, django_capture_on_commit_callbacks: Any
) -> None:
    client = api("admin")
    body = {"name": "approved", "scopes": ["read"]}
    with django_capture_on_commit_callbacks(execute=True):
        pending = client.post("/v1/api-keys", body, format="json")
    assert pending.status_code == 202
    assert not ApiKey.objects.filter(name="approved").exists()
    done = client.post("/v1/api-keys", body | {"approval_code": approval_code()}, format="json")
    assert done.status_code == 201
    assert done.json()["api_key"].startswith("mm_live_")


def test_revoke_with_agent_key_needs_approval(
    gated: Any, api: Any, django_capture_on_commit_callbacks: Any
) -> None:
    key, _ = key_for(gated.account, "read")
    client = api("admin")
    with django_capture_on_commit_callbacks(execute=True):
        pending = client.delete(f"/v1/api-keys/{key.pk}")
    assert pending.status_code == 202
    assert ApiKey.objects.get(pk=key.pk).is_active
    done = client.delete(
        f"/v1/api-keys/{key.pk}", {"approval_code": approval_code()}, format="json"
    )
    assert done.json() == {"status": "revoked"}
    assert not ApiKey.objects.get(pk=key.pk).is_active


def test_adding_oversight_needs_approval_but_renaming_does_not(
    gated: Any, api: Any, django_capture_on_commit_callbacks: Any
) -> None:
    key, _ = key_for(gated.account, "read")
    client = api("admin")
    renamed = client.patch(f"/v1/api-keys/{key.pk}", {"name": "r"}, format="json")
    assert renamed.status_code == 200
    body = {"scopes": ["read", "oversight"]}
    with django_capture_on_commit_callbacks(execute=True):
        pending = client.patch(f"/v1/api-keys/{key.pk}", body, format="json")
    assert pending.status_code == 202
    done = client.patch(
        f"/v1/api-keys/{key.pk}", body | {"approval_code": approval_code()}, format="json"
    )
    assert done.status_code == 200
    assert ApiKey.objects.get(pk=key.pk).scopes == ["read", "oversight"]


def test_console_approval_revokes_the_key(
    gated: Any, api: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from accounts.actors import Actor
    from oversight.admin_actions import admin_action_approve

    key, _ = key_for(gated.account, "read")
    with django_capture_on_commit_callbacks(execute=True):
        pending = api("admin").delete(f"/v1/api-keys/{key.pk}")
    approved = admin_action_approve(
        actor=Actor.for_operator(gated.operator), approval_id=pending.json()["approval_id"]
    )
    assert approved.result == {"status": "revoked"}
    assert not ApiKey.objects.get(pk=key.pk).is_active
