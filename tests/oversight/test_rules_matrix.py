"""Oversight rules and modes, both directions, through HTTP: the agent's send API for outbound
mail, the provider's inbound webhook for arrivals. Each email ends where the table in
oversight/policy.py says, and records who decided (``oversight_decision``)."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from accounts.models import AuditEntry
from mailboxes.models import (
    Correspondent,
    Direction,
    Email,
    EmailStatus,
    WebhookDelivery,
    WebhookEvent,
)
from mailboxes.tasks import send_due_scheduled
from oversight import policy
from tests.conftest import Tenant, assert_error
from tests.inbound.conftest import build_mime

pytestmark = pytest.mark.django_db

GATED = ("gated_all", "gated_send")
ACTIONS = (None, "approve", "hold", "refuse")
SECRET = "postmark:s3cret-webhook-pass"
# A rule that never matches, in front: the first rule that matches decides.
DECOY = {
    "name": "elsewhere",
    "direction": "outbound",
    "match": {"recipients": ["@elsewhere.example"]},
    "action": "refuse",
}


def _rules(tenant: Tenant, direction: str, action: str | None) -> None:
    rules = [DECOY]
    if action is not None:
        field = "recipients" if direction == Direction.OUTBOUND else "senders"
        rules.append(
            {
                "name": f"{action} example.org",
                "direction": direction,
                "match": {field: ["@example.org"], "subject_contains": ["REPORT"]},
                "action": action,
            }
        )
    mailbox = tenant.mailbox
    mailbox.oversight_rules = rules
    mailbox.oversight_webhook_url = "https://hooks.example/oversight"
    mailbox.save()


def _detail(email: Email, agent: Any) -> Any:
    return agent.get(f"/v1/mailboxes/{email.mailbox_id}/emails/{email.pk}")


def _decided(email: Email, agent: Any) -> dict[str, Any]:
    return _detail(email, agent).json()["oversight_decision"]


def _rejected_event(email: Email) -> dict[str, Any]:
    deliveries = WebhookDelivery.objects.filter(event_type=WebhookEvent.OVERSIGHT_REJECTED)
    [event] = [d.payload["data"] for d in deliveries if d.payload["data"]["email_id"] == email.pk]
    return event


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("mode", policy.LADDER)
def test_outbound(
    owner: Tenant, api, django_capture_on_commit_callbacks, mode: str, action: str | None
) -> None:
    owner.mailbox.oversight_mode = mode
    _rules(owner, Direction.OUTBOUND, action)
    agent = api("send", "read")
    with django_capture_on_commit_callbacks(execute=True):
        response = agent.post(
            f"/v1/mailboxes/{owner.mailbox.pk}/send",
            {"to": ["client@example.org"], "subject": "Weekly report", "markdown": "Hi"},
            format="json",
        )
    if mode == "read_only":
        # Read-only refuses outbound mail whatever the rules say.
        assert_error(response, "mailbox_read_only")
        return
    assert response.status_code == 202, response.content
    email = Email.objects.get(pk=response.json()["id"])
    decision = _decided(email, agent)
    rule = None if action is None else f"{action} example.org"
    assert decision["by"] == ("mode" if action is None else "rule")
    assert decision["rule"] == rule
    assert decision["at"]
    if action == "refuse":
        assert email.status == EmailStatus.REJECTED
        assert rule is not None
        assert rule in email.failure_reason
        body = _detail(email, agent).json()
        assert rule in body["failure_reason"]
        event = _rejected_event(email)
        assert (event["decided_via"], event["rule"]) == ("rule", rule)
        assert event["oversight_decision"]["by"] == "rule"
        entry = AuditEntry.objects.get(action="email.refused_by_rule", resource_id=email.pk)
        assert entry.metadata["rule"] == rule
    elif action == "hold" or (action is None and mode in GATED):
        assert email.status == EmailStatus.PENDING_SEND_APPROVAL
        pending = api("oversight_read").get("/v1/oversight/pending").json()["emails"]
        assert [item["oversight_decision"]["rule"] for item in pending] == [rule]
    else:
        # approve sends without a hold in the gated modes too.
        assert email.status == EmailStatus.SENT


def _arrive(tenant: Tenant, **mime: Any) -> Any:
    raw = build_mime(to=tenant.mailbox.address, sender="Client <client@example.org>", **mime)
    body = {"RawEmail": raw.decode(), "OriginalRecipient": tenant.mailbox.address}
    auth = "Basic " + base64.b64encode(SECRET.encode()).decode()
    with override_settings(ANYMAIL={"WEBHOOK_SECRET": SECRET}):
        return Client().post(
            "/v1/webhooks/postmark-inbound",
            data=json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=auth,
        )


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("mode", policy.LADDER)
def test_inbound(
    owner: Tenant, api, django_capture_on_commit_callbacks, mode: str, action: str | None
) -> None:
    owner.mailbox.oversight_mode = mode
    _rules(owner, Direction.INBOUND, action)
    with django_capture_on_commit_callbacks(execute=True):
        response = _arrive(owner, subject="Monthly report")
    assert response.status_code == 200, response.content
    email = Email.objects.get(mailbox=owner.mailbox, direction=Direction.INBOUND)
    rule = None if action is None else f"{action} example.org"
    assert (email.decided_by, email.decided_rule or None) == (
        "mode" if action is None else "rule",
        rule,
    )
    agent = api("read")
    listed = agent.get(f"/v1/mailboxes/{owner.mailbox.pk}/emails").json()["emails"]
    if action == "refuse":
        # Never shown to the agent: not listed, not readable.
        assert email.status == EmailStatus.REJECTED
        assert rule is not None
        assert rule in email.failure_reason
        assert listed == []
        assert _detail(email, agent).status_code == 404
        event = _rejected_event(email)
        assert (event["decided_via"], event["rule"]) == ("rule", rule)
        assert not WebhookDelivery.objects.filter(event_type=WebhookEvent.MESSAGE_RECEIVED).exists()
    elif action == "hold" or (action is None and mode == "gated_all"):
        assert email.status == EmailStatus.PENDING_INBOUND_APPROVAL
        pending = api("oversight_read").get("/v1/oversight/pending").json()["emails"]
        assert [item["oversight_decision"]["rule"] for item in pending] == [rule]
        assert _decided(email, agent)["rule"] == rule
    else:
        assert email.status == EmailStatus.UNREAD
        assert [item["id"] for item in listed] == [email.pk]
        assert _decided(email, agent) == {
            "by": "mode" if action is None else "rule",
            "rule": rule,
            "at": _decided(email, agent)["at"],
        }


def test_operator_decision_is_recorded_over_the_rule(
    owner: Tenant, api, django_capture_on_commit_callbacks
) -> None:
    owner.mailbox.oversight_mode = "autonomous"
    _rules(owner, Direction.OUTBOUND, "hold")
    agent = api("send", "read")
    with django_capture_on_commit_callbacks(execute=True):
        sent = agent.post(
            f"/v1/mailboxes/{owner.mailbox.pk}/send",
            {"to": ["client@example.org"], "subject": "Report", "markdown": "Hi"},
            format="json",
        ).json()
    with django_capture_on_commit_callbacks(execute=True):
        decided = api("oversight").post(
            "/v1/oversight/decide", {"email_id": sent["id"], "action": "approve"}, format="json"
        )
    assert decided.status_code == 200, decided.content
    decision = _decided(Email.objects.get(pk=sent["id"]), agent)
    assert (decision["by"], decision["rule"]) == ("api_key", None)
    entry = AuditEntry.objects.get(action="email.approved", resource_id=sent["id"])
    assert entry.metadata["oversight_decision"]["by"] == "api_key"
    assert Email.objects.get(pk=sent["id"]).status == EmailStatus.SENT


def test_rules_look_at_every_recipient_and_first_contact(
    owner: Tenant, api, django_capture_on_commit_callbacks
) -> None:
    """An allowlist approves only mail whose every recipient is on it; first_contact holds
    mail to someone the account never exchanged mail with."""
    owner.mailbox.oversight_mode = "autonomous"
    owner.mailbox.oversight_rules = [
        {
            "name": "colleagues",
            "direction": "outbound",
            "match": {"recipients": ["@acme.example", "boss@partner.example"]},
            "action": "approve",
        },
        {
            "name": "strangers",
            "direction": "outbound",
            "match": {"first_contact": True},
            "action": "hold",
        },
    ]
    owner.mailbox.save()
    agent = api("send", "read")

    def send(*to: str) -> Email:
        with django_capture_on_commit_callbacks(execute=True):
            response = agent.post(
                f"/v1/mailboxes/{owner.mailbox.pk}/send",
                {"to": list(to), "subject": "Hello", "markdown": "Hi"},
                format="json",
            )
        return Email.objects.get(pk=response.json()["id"])

    approved = send("Ann@ACME.example", "boss@partner.example")
    assert (approved.status, approved.decided_rule) == (EmailStatus.SENT, "colleagues")
    mixed = send("ann@acme.example", "new@stranger.example")
    assert (mixed.status, mixed.decided_rule) == (EmailStatus.PENDING_SEND_APPROVAL, "strangers")
    # An address the account heard from before is no first contact: the mode decides.
    Correspondent.objects.create(
        account=owner.account,
        address="old@friend.example",
        direction=Direction.INBOUND,
        first_email_id="x",
        last_email_id="x",
    )
    known = send("old@friend.example")
    assert (known.status, known.decided_by, known.decided_rule) == (EmailStatus.SENT, "mode", "")


@pytest.mark.parametrize(
    ("mode", "gate_timing", "action", "at_once", "when_due"),
    [
        # A hold rule in an open mode holds scheduled mail as a gated mode would.
        ("autonomous", "gate_first", "hold", EmailStatus.PENDING_SEND_APPROVAL, None),
        ("autonomous", "schedule_first", "hold", EmailStatus.SCHEDULED, "pending_send_approval"),
        # An approve rule in a gated mode lets it wait and go without a hold.
        ("gated_send", "gate_first", "approve", EmailStatus.SCHEDULED, "sent"),
        ("gated_all", "schedule_first", "approve", EmailStatus.SCHEDULED, "sent"),
        # Refusing does not wait for the send time.
        ("monitored", "schedule_first", "refuse", EmailStatus.REJECTED, None),
    ],
)
def test_scheduled_mail(
    owner: Tenant,
    api,
    django_capture_on_commit_callbacks,
    mode: str,
    gate_timing: str,
    action: str,
    at_once: str,
    when_due: str | None,
) -> None:
    owner.mailbox.oversight_mode = mode
    _rules(owner, Direction.OUTBOUND, action)
    agent = api("send", "read")
    with django_capture_on_commit_callbacks(execute=True):
        response = agent.post(
            f"/v1/mailboxes/{owner.mailbox.pk}/send",
            {
                "to": ["client@example.org"],
                "subject": "Report, later",
                "markdown": "Hi",
                "send_at": (timezone.now() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "gate_timing": gate_timing,
            },
            format="json",
        )
    assert response.status_code == 202, response.content
    email = Email.objects.get(pk=response.json()["id"])
    assert email.status == at_once
    if when_due is None:
        return
    Email.objects.filter(pk=email.pk).update(send_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        send_due_scheduled()
    email.refresh_from_db()
    assert email.status == when_due
    assert (email.decided_by, email.decided_rule) == ("rule", f"{action} example.org")
