"""Mailbox CRUD over HTTP: shapes, address rules, plan limits, approval, tenancy."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.actors import Actor
from accounts.models import AuditEntry
from mailboxes.models import Domain, Mailbox
from oversight.admin_actions import admin_action_approve
from tests.conftest import Tenant, assert_error

# Mailbox webhook URLs are vetted when saved: host names resolve to a public address.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("public_dns")]

CODE = re.compile(r"\b[A-Z0-9]{3}-[A-Z0-9]{3}-[A-Z0-9]{3}\b")


@pytest.fixture
def admin(api: Callable[..., APIClient]) -> APIClient:
    return api("admin")


def _url(mailbox: Mailbox | str, suffix: str = "") -> str:
    mailbox_id = mailbox if isinstance(mailbox, str) else mailbox.pk
    return f"/v1/mailboxes/{mailbox_id}{suffix}"


def test_create_returns_the_mailbox_shape_and_starts_gated(admin: APIClient, owner: Tenant) -> None:
    response = admin.post(
        "/v1/mailboxes",
        {"address_local": "sales.team", "display_name": "Sales", "oversight_mode": "autonomous"},
        format="json",
    )
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["address"] == "sales.team@acme.multimail.localhost"
    assert data["oversight_mode"] == "gated_send"  # the requested mode is ignored
    assert data["is_active"] == 1
    assert data["forward_inbound"] == 0
    assert isinstance(data["created_at"], int)
    assert data["created_at"] > 10**12
    assert set(data) >= {
        "id", "tenant_id", "display_name", "auto_cc", "auto_bcc", "webhook_url",
        "oversight_webhook_url", "signature_block", "ai_disclosure", "mcp_configured",
        "default_gate_timing", "scheduling_enabled",
    }  # fmt: skip
    assert AuditEntry.objects.filter(action="mailbox.created", resource_id=data["id"]).exists()


def test_create_accepts_address_alias_and_full_address(admin: APIClient, owner: Tenant) -> None:
    response = admin.post(
        "/v1/mailboxes", {"address": "help@acme.multimail.localhost"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["address"] == "help@acme.multimail.localhost"


def test_create_on_verified_custom_domain(admin: APIClient, owner: Tenant) -> None:
    Domain.objects.create(account=owner.account, domain="acme.example", status="active")
    Domain.objects.create(account=owner.account, domain="pending.example")
    response = admin.post("/v1/mailboxes", {"address_local": "ops@acme.example"}, format="json")
    assert response.status_code == 201, response.content
    pending = admin.post("/v1/mailboxes", {"address_local": "ops@pending.example"}, format="json")
    assert_error(pending, "invalid_parameter", param="address_local")


@pytest.mark.parametrize("local", ["-bad", "bad-", "Upper", "sp ace", "a+b", "", "x" * 65])
def test_create_rejects_bad_local_parts(admin: APIClient, owner: Tenant, local: str) -> None:
    response = admin.post("/v1/mailboxes", {"address_local": local}, format="json")
    if local == "":
        assert_error(response, "missing_parameter", param="address_local")
    else:
        assert_error(response, "invalid_parameter", param="address_local")


def test_create_missing_address(admin: APIClient, owner: Tenant) -> None:
    assert_error(
        admin.post("/v1/mailboxes", {}, format="json"), "missing_parameter", param="address_local"
    )


def test_address_taken_even_after_delete(admin: APIClient, owner: Tenant, other: Tenant) -> None:
    taken = admin.post("/v1/mailboxes", {"address_local": "agent"}, format="json")
    assert_error(taken, "address_taken", param="address_local")
    created = admin.post("/v1/mailboxes", {"address_local": "temp"}, format="json").json()
    assert admin.delete(_url(created["id"])).status_code == 200
    again = admin.post("/v1/mailboxes", {"address_local": "temp"}, format="json")
    assert_error(again, "address_taken")


def test_plan_limit(admin: APIClient, owner: Tenant) -> None:
    assert admin.post("/v1/mailboxes", {"address_local": "two"}, format="json").status_code == 201
    response = admin.post("/v1/mailboxes", {"address_local": "three"}, format="json")
    assert_error(response, "limit_exceeded", limit=2, plan="starter")


def test_create_needs_admin_scope(api: Callable[..., APIClient], owner: Tenant) -> None:
    response = api("read", "send").post("/v1/mailboxes", {"address_local": "x"}, format="json")
    assert_error(response, "insufficient_permissions", required_scope="admin")


def test_create_with_agent_key_needs_operator_code(
    admin: APIClient, owner: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    owner.account.require_operator_approval = True
    owner.account.save(update_fields=["require_operator_approval"])
    with django_capture_on_commit_callbacks(execute=True):
        pending = admin.post("/v1/mailboxes", {"address_local": "gated"}, format="json")
    assert pending.status_code == 202
    assert pending.json()["status"] == "pending_approval"
    assert not Mailbox.objects.filter(address__startswith="gated@").exists()
    code = CODE.search(mail.outbox[-1].body).group(0)
    done = admin.post(
        "/v1/mailboxes", {"address_local": "gated", "approval_code": code}, format="json"
    )
    assert done.status_code == 201, done.content


def test_list_is_paginated_and_scoped(
    admin: APIClient, owner: Tenant, other: Tenant, django_assert_num_queries: Any
) -> None:
    for index in range(3):
        Mailbox.objects.create(account=owner.account, address=f"m{index}@acme.multimail.localhost")
    admin.get("/v1/mailboxes?limit=1")  # warm-up: the key's last_used_at is written once
    with CaptureQueriesContext(connection) as baseline:
        small = admin.get("/v1/mailboxes?limit=2")
    # The count of a page does not grow with its size (no query per mailbox).
    with django_assert_num_queries(len(baseline)):
        large = admin.get("/v1/mailboxes?limit=100")
    assert len(small.json()["mailboxes"]) == 2
    assert small.json()["cursor"]
    rest = admin.get(f"/v1/mailboxes?limit=2&cursor={small.json()['cursor']}").json()
    addresses = {m["address"] for m in large.json()["mailboxes"]}
    assert len(addresses) == 4
    assert other.mailbox.address not in addresses
    assert len(rest["mailboxes"]) == 2
    assert rest["cursor"] is None


def test_other_tenants_mailbox_is_not_found(admin: APIClient, other: Tenant) -> None:
    for response in (
        admin.get(_url(other.mailbox)),
        admin.patch(_url(other.mailbox), {"display_name": "x"}, format="json"),
        admin.patch(_url(other.mailbox, "/configure"), {"mcp_configured": 1}, format="json"),
        admin.delete(_url(other.mailbox)),
    ):
        assert_error(response, "not_found", resource="mailbox")


def test_get_has_etag_and_304(admin: APIClient, owner: Tenant) -> None:
    response = admin.get(_url(owner.mailbox))
    assert response.status_code == 200
    assert response.json()["address"] == owner.mailbox.address
    cached = admin.get(_url(owner.mailbox), HTTP_IF_NONE_MATCH=response["ETag"])
    assert cached.status_code == 304


def test_patch_settings_and_audit(admin: APIClient, owner: Tenant) -> None:
    response = admin.patch(
        _url(owner.mailbox),
        {
            "display_name": "Acme Agent",
            "auto_bcc": "archive@example.org",
            "forward_inbound": True,
            "signature_block": "-- Acme",
            "ai_disclosure": True,
            "webhook_url": "https://hooks.example.org/mm",
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "updated"}
    data = admin.get(_url(owner.mailbox)).json()
    assert data["display_name"] == "Acme Agent"
    assert data["forward_inbound"] == 1
    assert data["auto_bcc"] == "archive@example.org"
    assert data["ai_disclosure"] == 1
    entry = AuditEntry.objects.get(action="mailbox.updated", resource_id=owner.mailbox.pk)
    assert entry.metadata["changes"]["display_name"] == ["", "Acme Agent"]
    cleared = admin.patch(_url(owner.mailbox), {"auto_bcc": None}, format="json")
    assert cleared.status_code == 200
    assert admin.get(_url(owner.mailbox)).json()["auto_bcc"] is None


def test_patch_rejects_bad_fields(admin: APIClient, owner: Tenant) -> None:
    assert_error(
        admin.patch(_url(owner.mailbox), {"signature_block": "x" * 201}, format="json"),
        "invalid_parameter",
        param="signature_block",
    )
    assert_error(
        admin.patch(_url(owner.mailbox), {"auto_cc": "not-an-email"}, format="json"),
        "invalid_parameter",
        param="auto_cc",
    )
    assert_error(
        admin.patch(_url(owner.mailbox), {"oversight_mode": "yolo"}, format="json"),
        "invalid_parameter",
        param="oversight_mode",
    )


def test_oversight_mode_only_downgrades(admin: APIClient, owner: Tenant) -> None:
    owner.mailbox.oversight_mode = "gated_send"
    owner.mailbox.save()
    upgrade = admin.patch(_url(owner.mailbox), {"oversight_mode": "autonomous"}, format="json")
    error = assert_error(upgrade, "validation_error", param="oversight_mode")
    assert "request-upgrade" in error["message"]
    down = admin.patch(_url(owner.mailbox), {"oversight_mode": "read_only"}, format="json")
    assert down.status_code == 200
    owner.mailbox.refresh_from_db()
    assert owner.mailbox.oversight_mode == "read_only"


def test_if_match(admin: APIClient, owner: Tenant) -> None:
    etag = admin.get(_url(owner.mailbox))["ETag"]
    ok = admin.patch(_url(owner.mailbox), {"display_name": "A"}, format="json", HTTP_IF_MATCH=etag)
    assert ok.status_code == 200
    stale = admin.patch(
        _url(owner.mailbox), {"display_name": "B"}, format="json", HTTP_IF_MATCH=etag
    )
    assert_error(stale, "conflict", param="If-Match")
    assert_error(admin.delete(_url(owner.mailbox), HTTP_IF_MATCH=etag), "conflict")


def test_copy_changes_need_operator_code_for_agent_keys(
    admin: APIClient, owner: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    owner.account.require_operator_approval = True
    owner.account.save(update_fields=["require_operator_approval"])
    with django_capture_on_commit_callbacks(execute=True):
        pending = admin.patch(_url(owner.mailbox), {"auto_cc": "x@example.org"}, format="json")
    assert pending.status_code == 202
    owner.mailbox.refresh_from_db()
    assert owner.mailbox.auto_cc is None
    code = CODE.search(mail.outbox[-1].body).group(0)
    done = admin.patch(
        _url(owner.mailbox), {"auto_cc": "x@example.org", "approval_code": code}, format="json"
    )
    assert done.status_code == 200
    owner.mailbox.refresh_from_db()
    assert owner.mailbox.auto_cc == "x@example.org"


def test_configure_takes_mcp_fields(admin: APIClient, owner: Tenant) -> None:
    response = admin.patch(
        _url(owner.mailbox, "/configure"),
        {
            "mcp_configured": 1,
            "scheduling_enabled": 0,
            "ai_disclosure": 1,
            "default_gate_timing": "schedule_first",
            "display_name": "Bot",
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["mcp_configured"] == 1
    assert data["scheduling_enabled"] == 0
    assert data["default_gate_timing"] == "schedule_first"
    assert data["ai_disclosure"] == 1
    assert AuditEntry.objects.filter(action="mailbox.configured").exists()
    bad = admin.patch(
        _url(owner.mailbox, "/configure"), {"default_gate_timing": "later"}, format="json"
    )
    assert_error(bad, "invalid_parameter", param="default_gate_timing")


def test_delete_is_soft(admin: APIClient, owner: Tenant) -> None:
    response = admin.delete(_url(owner.mailbox))
    assert response.status_code == 200
    assert response.json() == {"status": "deleted"}
    owner.mailbox.refresh_from_db()
    assert owner.mailbox.is_active is False
    assert owner.mailbox.deleted_at is not None
    assert AuditEntry.objects.filter(action="mailbox.deleted").exists()
    assert_error(admin.get(_url(owner.mailbox)), "not_found", resource="mailbox")
    assert admin.get("/v1/mailboxes").json()["mailboxes"] == []


def test_operator_approves_pending_requests_in_the_console(
    admin: APIClient, owner: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    owner.account.require_operator_approval = True
    owner.account.save(update_fields=["require_operator_approval"])
    with django_capture_on_commit_callbacks(execute=True):
        created = admin.post("/v1/mailboxes", {"address_local": "later"}, format="json").json()
        changed = admin.patch(
            _url(owner.mailbox), {"auto_bcc": "copy@example.org"}, format="json"
        ).json()
    operator = Actor.for_operator(owner.operator)
    result = admin_action_approve(actor=operator, approval_id=created["approval_id"]).result
    assert result["address"] == "later@acme.multimail.localhost"
    admin_action_approve(actor=operator, approval_id=changed["approval_id"])
    owner.mailbox.refresh_from_db()
    assert owner.mailbox.auto_bcc == "copy@example.org"


def test_webhook_url_change_needs_operator_code_for_agent_keys(
    admin: APIClient, owner: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    owner.account.require_operator_approval = True
    owner.account.save(update_fields=["require_operator_approval"])
    with django_capture_on_commit_callbacks(execute=True):
        pending = admin.patch(
            _url(owner.mailbox), {"webhook_url": "https://agent.example/hook"}, format="json"
        )
    assert pending.status_code == 202
    plain = admin.patch(_url(owner.mailbox), {"display_name": "No approval"}, format="json")
    assert plain.status_code == 200


@pytest.mark.parametrize("field", ["webhook_url", "oversight_webhook_url"])
def test_a_new_mailbox_webhook_url_is_vetted_when_saved(
    admin: APIClient, owner: Tenant, field: str
) -> None:
    """Whoever saves it (approvals are off here), a URL this server may not call is refused;
    a URL stored before the check existed does not block saving the other settings."""
    refused = admin.patch(_url(owner.mailbox), {field: "https://127.0.0.1/hook"}, format="json")
    assert_error(refused, "invalid_parameter", param=field)
    Mailbox.objects.filter(pk=owner.mailbox.pk).update(**{field: "http://legacy.example/hook"})
    kept = admin.patch(
        _url(owner.mailbox),
        {field: "http://legacy.example/hook", "display_name": "Still fine"},
        format="json",
    )
    assert kept.status_code == 200, kept.content
    owner.mailbox.refresh_from_db()
    assert owner.mailbox.display_name == "Still fine"


def test_a_mailbox_is_not_created_with_a_webhook_url_it_may_not_call(admin: APIClient) -> None:
    response = admin.post(
        "/v1/mailboxes",
        {"address_local": "hooked", "webhook_url": "http://hooks.example.org/x"},
        format="json",
    )
    assert_error(response, "invalid_parameter", param="webhook_url")
    assert not Mailbox.objects.filter(address__startswith="hooked@").exists()
