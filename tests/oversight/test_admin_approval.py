"""Sensitive admin actions done with an agent's key need the operator: revoking a key is a
two-call flow (202 pending_approval, code emailed, the same call with approval_code)."""

from __future__ import annotations

import re

from django.core import mail
from django.test import TestCase

from accounts.actors import Actor
from accounts.models import AdminActionRequest, AdminActionStatus, ApiKey, AuditEntry
from oversight.admin_actions import admin_action_deny
from tests.conftest import Tenant, assert_error, client_for, key_for

CODE = re.compile(r"^\s{4}([A-Z0-9]{3}-[A-Z0-9]{3}-[A-Z0-9]{3})$", re.MULTILINE)


def _approvals_on(tenant: Tenant) -> None:
    tenant.account.require_operator_approval = True
    tenant.account.save()


def _delete(client, key_id: str, **body: str):
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.delete(f"/v1/api-keys/{key_id}", body or None, format="json")


def test_revoking_a_key_takes_the_operators_code(owner: Tenant) -> None:
    _approvals_on(owner)
    _, admin_raw = key_for(owner.account, "admin")
    target, _ = key_for(owner.account, "read")
    admin = client_for(admin_raw)

    first = _delete(admin, target.pk)
    assert first.status_code == 202
    assert first.json()["status"] == "pending_approval"
    target.refresh_from_db()
    assert target.is_active
    [notice] = mail.outbox
    assert notice.to == [owner.account.oversight_email]
    code = CODE.search(notice.body).group(1)

    wrong = _delete(admin, target.pk, approval_code="AAA-BBB-CCC")
    assert_error(wrong, "validation_error", param="approval_code")
    target.refresh_from_db()
    assert target.is_active

    done = _delete(admin, target.pk, approval_code=code)
    assert done.status_code == 200
    assert done.json() == {"status": "revoked"}
    target.refresh_from_db()
    assert not target.is_active
    assert AuditEntry.objects.filter(action="approval_code.used").exists()


def test_a_code_works_for_its_own_action_only(owner: Tenant) -> None:
    _approvals_on(owner)
    _, admin_raw = key_for(owner.account, "admin")
    first_target, _ = key_for(owner.account, "read")
    second_target, _ = key_for(owner.account, "read")
    admin = client_for(admin_raw)
    _delete(admin, first_target.pk)
    code = CODE.search(mail.outbox[-1].body).group(1)
    response = _delete(admin, second_target.pk, approval_code=code)
    assert_error(response, "validation_error", param="approval_code")
    assert ApiKey.objects.get(pk=second_target.pk).is_active


def test_a_denied_request_cannot_be_completed_with_its_code(owner: Tenant) -> None:
    _approvals_on(owner)
    _, admin_raw = key_for(owner.account, "admin")
    target, _ = key_for(owner.account, "read")
    admin = client_for(admin_raw)
    pending_id = _delete(admin, target.pk).json()["approval_id"]
    code = CODE.search(mail.outbox[-1].body).group(1)
    admin_action_deny(actor=Actor.for_operator(owner.operator), approval_id=pending_id)
    assert AdminActionRequest.objects.get(pk=pending_id).status == AdminActionStatus.DENIED
    response = _delete(admin, target.pk, approval_code=code)
    assert_error(response, "validation_error", param="approval_code")
    assert ApiKey.objects.get(pk=target.pk).is_active


def test_a_send_key_cannot_grant_itself_oversight(owner: Tenant) -> None:
    """No path lets the agent approve its own mail: keys cannot hold send and oversight,
    a send key cannot edit keys, and adding oversight to a key needs the operator."""
    _approvals_on(owner)
    send_key, send_raw = key_for(owner.account, "send")
    response = client_for(send_raw).patch(
        f"/v1/api-keys/{send_key.pk}", {"scopes": ["oversight"]}, format="json"
    )
    assert_error(response, "insufficient_permissions", required_scope="admin")
    _, admin_raw = key_for(owner.account, "admin")
    reader, _ = key_for(owner.account, "read")
    with TestCase.captureOnCommitCallbacks(execute=True):
        gated = client_for(admin_raw).patch(
            f"/v1/api-keys/{reader.pk}", {"scopes": ["read", "oversight"]}, format="json"
        )
    assert gated.status_code == 202
    reader.refresh_from_db()
    assert reader.scopes == ["read"]
    both = client_for(admin_raw).patch(
        f"/v1/api-keys/{send_key.pk}", {"scopes": ["send", "oversight"]}, format="json"
    )
    assert_error(both, "validation_error", param="scopes")
