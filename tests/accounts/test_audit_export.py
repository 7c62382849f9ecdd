"""GET /v1/audit-log and GET /v1/export."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.actors import Actor
from accounts.models import AuditEntry
from accounts.services import audit_record
from mailboxes.models import WebhookSubscription
from tests.conftest import assert_error, key_for

pytestmark = pytest.mark.django_db


def test_audit_log_shape_and_actor(api: Any, owner: Any) -> None:
    client = api("admin")
    created = client.post("/v1/api-keys", {"name": "k"}, format="json").json()
    body = client.get("/v1/audit-log").json()
    (entry,) = body["entries"]
    assert entry["action"] == "api_key.created"
    assert entry["resource_type"] == "api_key"
    assert entry["resource_id"] == created["id"]
    assert entry["actor_key_id"]
    assert body["cursor"] is None


def test_audit_log_is_tenant_scoped(api: Any, other: Any) -> None:
    audit_record(actor=Actor.system(other.account), action="x.y", resource_type="account")
    assert api("admin").get("/v1/audit-log").json()["entries"] == []


def test_audit_log_pages_default_50(
    api: Any, owner: Any, django_assert_max_num_queries: Any
) -> None:
    actor = Actor.system(owner.account)
    for _ in range(60):
        audit_record(actor=actor, action="x.y", resource_type="account")
    client = api("admin")
    client.get("/v1/audit-log?limit=1")
    with django_assert_max_num_queries(2):
        first = client.get("/v1/audit-log").json()
    assert len(first["entries"]) == 50
    with django_assert_max_num_queries(2):
        rest = client.get(f"/v1/audit-log?limit=100&cursor={first['cursor']}").json()
    assert len(rest["entries"]) == 10
    assert rest["cursor"] is None


@pytest.mark.parametrize("limit", ["0", "101", "abc"])
def test_audit_log_limit_bounds(api: Any, limit: str) -> None:
    assert_error(
        api("admin").get(f"/v1/audit-log?limit={limit}"), "invalid_parameter", param="limit"
    )


def test_audit_log_bad_cursor(api: Any) -> None:
    assert_error(
        api("admin").get("/v1/audit-log?cursor=garbage!"), "invalid_parameter", param="cursor"
    )


def test_export_contains_the_account_without_secrets(api: Any, owner: Any, other: Any) -> None:
    WebhookSubscription.objects.create(
        account=owner.account, url="https://hooks.example/x", events=[], signing_secret="whsec_s3"
    )
    key_for(other.account, "read")
    response = api("admin").get("/v1/export")
    assert response.status_code == 200
    body = response.json()
    assert body["account"]["slug"] == "acme"
    assert [m["address"] for m in body["mailboxes"]] == [owner.mailbox.address]
    assert len(body["api_keys"]) == 1
    assert len(body["webhooks"]) == 1
    text = response.content.decode()
    assert "whsec_s3" not in text
    assert "key_hash" not in text
    assert "globex" not in text
    assert {"emails", "contacts", "audit_log", "operators", "suppressions"} <= set(body)
    assert AuditEntry.objects.filter(account=owner.account, action="account.exported").exists()


def test_export_once_per_hour(api: Any) -> None:
    client = api("admin")
    assert client.get("/v1/export").status_code == 200
    response = client.get("/v1/export")
    assert_error(response, "rate_limit_exceeded", limit_type="export")
    assert int(response["Retry-After"]) > 3000


def test_export_needs_admin(api: Any) -> None:
    assert_error(api("read").get("/v1/export"), "insufficient_permissions", required_scope="admin")
