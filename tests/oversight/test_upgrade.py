"""Mode upgrades: request-upgrade emails a code, upgrade redeems it; direct mode changes."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import TestCase
from django.utils import timezone

from accounts.actors import Actor
from accounts.models import AuditEntry, CodePurpose, OneTimeCode
from mailboxes.models import Mailbox
from multimail.errors import ApiError
from oversight.services import mailbox_set_mode
from tests.conftest import Tenant, assert_error

CODE = re.compile(r"^\s{4}([A-Z0-9]{3}-[A-Z0-9]{3}-[A-Z0-9]{3})$", re.MULTILINE)


def _gated(tenant: Tenant, mode: str = "gated_send") -> Mailbox:
    tenant.mailbox.oversight_mode = mode
    tenant.mailbox.save()
    return tenant.mailbox


def _request(client, mailbox_id: str, target: str = "monitored"):
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(
            f"/v1/mailboxes/{mailbox_id}/request-upgrade", {"target_mode": target}, format="json"
        )


def _emailed_code() -> str:
    found = CODE.search(mail.outbox[-1].body)
    assert found, mail.outbox[-1].body
    return found.group(1)


def test_request_then_redeem_upgrades_once(owner: Tenant, api) -> None:
    mailbox = _gated(owner)
    client = api("send")
    response = _request(client, mailbox.pk, "monitored")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "upgrade_requested"
    assert body["target_mode"] == "monitored"
    assert body["message"]
    [message] = mail.outbox
    assert message.to == [owner.account.oversight_email]
    assert "gated_send to monitored" in message.body
    code = _emailed_code()
    record = OneTimeCode.objects.get(purpose=CodePurpose.MODE_UPGRADE)
    assert record.subject == f"{mailbox.pk}:monitored"
    assert timedelta(hours=23) < record.expires_at - record.created_at <= timedelta(hours=24)

    response = client.post(f"/v1/mailboxes/{mailbox.pk}/upgrade", {"code": code}, format="json")
    assert response.status_code == 200
    assert response.json() == {"status": "upgraded", "oversight_mode": "monitored"}
    mailbox.refresh_from_db()
    assert mailbox.oversight_mode == "monitored"
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"mailbox.upgrade_requested", "upgrade_code.used", "mailbox.upgraded"} <= actions

    # Single use.
    _gated(owner)
    again = client.post(f"/v1/mailboxes/{mailbox.pk}/upgrade", {"code": code}, format="json")
    assert_error(again, "validation_error", param="code")


def test_code_accepts_lowercase_without_hyphens(owner: Tenant, api) -> None:
    mailbox = _gated(owner)
    client = api("send")
    _request(client, mailbox.pk, "autonomous")
    code = _emailed_code().replace("-", "").lower()
    response = client.post(f"/v1/mailboxes/{mailbox.pk}/upgrade", {"code": code}, format="json")
    assert response.json()["oversight_mode"] == "autonomous"


def test_request_upgrade_inputs(owner: Tenant, api) -> None:
    mailbox = _gated(owner)
    client = api("send")
    url = f"/v1/mailboxes/{mailbox.pk}/request-upgrade"
    assert_error(client.post(url, {}, format="json"), "missing_parameter", param="target_mode")
    assert_error(
        client.post(url, {"target_mode": "yolo"}, format="json"),
        "invalid_parameter",
        param="target_mode",
    )
    same = assert_error(
        client.post(url, {"target_mode": "gated_send"}, format="json"),
        "validation_error",
        param="target_mode",
    )
    assert "already" in same["message"]
    down = assert_error(
        client.post(url, {"target_mode": "read_only"}, format="json"),
        "validation_error",
        param="target_mode",
    )
    assert "PATCH" in down["message"]
    assert mail.outbox == []


def test_request_upgrade_is_limited_to_three_an_hour_per_mailbox(owner: Tenant, api) -> None:
    mailbox = _gated(owner)
    client = api("send")
    for _ in range(3):
        assert _request(client, mailbox.pk).status_code == 200
    response = _request(client, mailbox.pk)
    assert_error(response, "rate_limit_exceeded", limit_type="upgrade_request")
    assert len(mail.outbox) == 3


def test_upgrade_inputs(owner: Tenant, api) -> None:
    mailbox = _gated(owner)
    client = api("send")
    url = f"/v1/mailboxes/{mailbox.pk}/upgrade"
    assert_error(client.post(url, {}, format="json"), "missing_parameter", param="code")
    assert_error(
        client.post(url, {"code": "AAA-BBB-CCC"}, format="json"), "validation_error", param="code"
    )


def test_code_is_bound_to_its_mailbox(owner: Tenant, api) -> None:
    mailbox = _gated(owner)
    second = Mailbox.objects.create(
        account=owner.account,
        address="second@acme.multimail.localhost",
        oversight_mode="gated_send",
    )
    client = api("send")
    _request(client, mailbox.pk, "autonomous")
    code = _emailed_code()
    response = client.post(f"/v1/mailboxes/{second.pk}/upgrade", {"code": code}, format="json")
    assert_error(response, "validation_error", param="code")
    second.refresh_from_db()
    assert second.oversight_mode == "gated_send"


def test_code_for_a_mode_no_longer_above_is_refused(owner: Tenant, api) -> None:
    mailbox = _gated(owner)
    client = api("send")
    _request(client, mailbox.pk, "monitored")
    code = _emailed_code()
    mailbox_set_mode(actor=Actor.for_operator(owner.operator), mailbox=mailbox, mode="autonomous")
    response = client.post(f"/v1/mailboxes/{mailbox.pk}/upgrade", {"code": code}, format="json")
    assert_error(response, "validation_error", param="code")
    mailbox.refresh_from_db()
    assert mailbox.oversight_mode == "autonomous"  # not lowered by an old code


def test_expired_code_is_refused(owner: Tenant, api) -> None:
    mailbox = _gated(owner)
    client = api("send")
    _request(client, mailbox.pk, "monitored")
    OneTimeCode.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.post(
        f"/v1/mailboxes/{mailbox.pk}/upgrade", {"code": _emailed_code()}, format="json"
    )
    assert_error(response, "validation_error", param="code")


def test_scopes_and_tenants(owner: Tenant, other: Tenant, api) -> None:
    mailbox = _gated(owner)
    for scopes in (("read",), ("oversight",), ("admin",)):
        response = api(*scopes).post(
            f"/v1/mailboxes/{mailbox.pk}/request-upgrade",
            {"target_mode": "monitored"},
            format="json",
        )
        assert_error(response, "insufficient_permissions", required_scope="send")
    client = api("send")
    foreign = _request(client, other.mailbox.pk, "monitored")
    assert_error(foreign, "not_found", resource="mailbox")
    response = client.post(
        f"/v1/mailboxes/{other.mailbox.pk}/upgrade", {"code": "AAA-BBB-CCC"}, format="json"
    )
    assert_error(response, "not_found", resource="mailbox")


def test_operator_sets_mode_directly_both_ways_with_audit(owner: Tenant) -> None:
    actor = Actor.for_operator(owner.operator)
    mailbox = _gated(owner)
    mailbox_set_mode(actor=actor, mailbox=mailbox, mode="autonomous")
    mailbox_set_mode(actor=actor, mailbox=mailbox, mode="read_only")
    mailbox.refresh_from_db()
    assert mailbox.oversight_mode == "read_only"
    entries = list(AuditEntry.objects.order_by("id").values_list("action", "metadata"))
    assert entries == [
        ("mailbox.upgraded", {"from": "gated_send", "to": "autonomous"}),
        ("mailbox.downgraded", {"from": "autonomous", "to": "read_only"}),
    ]
    assert AuditEntry.objects.filter(actor_label=f"operator:{owner.operator.email}").count() == 2


def test_set_mode_rejects_unknown_mode_and_foreign_mailbox(owner: Tenant, other: Tenant) -> None:
    actor = Actor.for_operator(owner.operator)
    with pytest.raises(ApiError) as unknown:
        mailbox_set_mode(actor=actor, mailbox=owner.mailbox, mode="yolo")
    assert unknown.value.code == "invalid_parameter"
    with pytest.raises(ApiError) as foreign:
        mailbox_set_mode(actor=actor, mailbox=other.mailbox, mode="read_only")
    assert foreign.value.code == "not_found"
    other.mailbox.refresh_from_db()
    assert other.mailbox.oversight_mode == "autonomous"
