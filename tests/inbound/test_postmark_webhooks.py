"""Postmark's inbound and delivery-event webhooks, with recorded payloads."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from accounts.models import Account
from mailboxes.models import (
    DeliveryEvent,
    Direction,
    Email,
    EmailStatus,
    Suppression,
    WebhookDelivery,
)
from mailboxes.services.delivery_events import ENFORCEMENT_MIN_SENDS, reputation_rates
from tests.conftest import Tenant, assert_error
from tests.inbound.conftest import build_mime, make_email

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "postmark:s3cret-webhook-pass"
ANYMAIL = {"WEBHOOK_SECRET": SECRET}


def payload(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def post(path: str, body: Any, *, auth: str | None = SECRET) -> Any:
    headers = {}
    if auth is not None:
        headers["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(auth.encode()).decode()
    data = body if isinstance(body, str) else json.dumps(body)
    return Client().post(path, data=data, content_type="application/json", **headers)


INBOUND = "/v1/webhooks/postmark-inbound"
EVENTS = "/v1/webhooks/postmark"


@override_settings(ANYMAIL=ANYMAIL)
def test_inbound_parsed_json_payload(owner: Tenant) -> None:
    response = post(INBOUND, payload("postmark_inbound.json"))
    assert response.status_code == 200
    assert response.json() == {"received": True, "processed": 1}
    email = Email.objects.get(mailbox=owner.mailbox)
    assert email.from_address == "support@postmarkapp.com"
    assert email.subject == "Test subject"
    assert email.cc == ["firstcc@postmarkapp.com"]
    assert (
        email.message_id == "<CAGXpo2Xp+xmT1uLdFkGUsSVZpqs_5vXg8GZuUJdT7zBhsRG+sg@mail.gmail.com>"
    )
    assert "This is a **test** html body." in email.markdown
    [attachment] = email.attachments.all()
    assert attachment.filename == "test.txt"
    assert bytes(attachment.content) == b"This is attachment contents, base-64 encoded."
    # Postmark retries deliver the same Message-ID: stored once.
    again = post(INBOUND, payload("postmark_inbound.json"))
    assert again.json() == {"received": True, "processed": 1}
    assert Email.objects.count() == 1


@override_settings(ANYMAIL=ANYMAIL)
def test_inbound_raw_email_payload(owner: Tenant) -> None:
    raw = build_mime(
        to=owner.mailbox.address,
        subject="Raw MIME",
        message_id="<raw-1@example.org>",
        attachments=[("data.csv", "text/csv", b"a,b\n1,2\n")],
    )
    body = payload("postmark_inbound.json") | {"RawEmail": raw.decode()}
    response = post(INBOUND, body)
    assert response.json() == {"received": True, "processed": 1}
    email = Email.objects.get(mailbox=owner.mailbox)
    assert email.subject == "Raw MIME"  # from the raw MIME, not the JSON fields
    assert email.message_id == "<raw-1@example.org>"
    assert email.attachments.get().filename == "data.csv"


@override_settings(ANYMAIL=ANYMAIL)
def test_inbound_unknown_recipient_is_ignored(db: Any) -> None:
    response = post(INBOUND, payload("postmark_inbound.json"))
    assert response.status_code == 200
    assert response.json() == {"received": True, "processed": 0}


@override_settings(ANYMAIL=ANYMAIL)
@pytest.mark.parametrize("path", [INBOUND, EVENTS])
@pytest.mark.parametrize("auth", [None, "postmark:wrong", "Basic-garbage"])
def test_bad_credentials_are_webhook_unauthorized(db: Any, path: str, auth: str | None) -> None:
    response = post(path, payload("postmark_inbound.json"), auth=auth)
    assert_error(response, "webhook_unauthorized")


@override_settings(ANYMAIL={"WEBHOOK_SECRET": None})
@pytest.mark.parametrize("path", [INBOUND, EVENTS])
def test_missing_secret_is_server_misconfigured(db: Any, path: str) -> None:
    assert_error(post(path, payload("postmark_inbound.json")), "server_misconfigured")


@override_settings(ANYMAIL=ANYMAIL)
@pytest.mark.parametrize(
    ("path", "body"),
    [
        (INBOUND, "not json"),
        (INBOUND, [1, 2]),
        (INBOUND, {"RecordType": "Bounce"}),
        (INBOUND, {"ToFull": "agent@example.org"}),
        (INBOUND, {"Headers": [{"Value": "no name"}]}),
        # A corrupted attachment is refused, not stored as what lenient base64 keeps ("ABC").
        (
            INBOUND,
            {
                "Attachments": [
                    {"Name": "a.pdf", "ContentType": "application/pdf", "Content": "QUJD!!!!"}
                ]
            },
        ),
        (EVENTS, "{"),
        (EVENTS, {"FromFull": {"Email": "x@example.org"}}),
    ],
)
def test_not_a_postmark_payload_is_invalid_parameter(db: Any, path: str, body: Any) -> None:
    assert_error(post(path, body), "invalid_parameter", param="body")


@override_settings(ANYMAIL=ANYMAIL)
def test_get_is_method_not_allowed(db: Any) -> None:
    assert_error(Client().get(INBOUND), "method_not_allowed")


def _sent(tenant: Tenant, **fields: Any) -> Email:
    values: dict[str, Any] = {
        "direction": Direction.OUTBOUND,
        "status": EmailStatus.SENT,
        "from_address": tenant.mailbox.address,
        "to": ["john@example.com"],
        "provider_message_id": "883953f4-6105-42a2-a16a-77a8eac79483",
        "sent_at": timezone.now(),
    }
    values.update(fields)
    return make_email(tenant.mailbox, **values)


@override_settings(ANYMAIL=ANYMAIL)
def test_delivery_event_sets_delivered_at_once(owner: Tenant) -> None:
    email = _sent(owner)
    first = post(EVENTS, payload("postmark_delivery.json"))
    assert first.json() == {"received": True, "processed": 1}
    second = post(EVENTS, payload("postmark_delivery.json"))
    assert second.json() == {"received": True, "processed": 0}
    email.refresh_from_db()
    assert email.delivered_at is not None
    assert email.delivered_at.year == 2026
    assert DeliveryEvent.objects.filter(email=email, event_type="delivered").count() == 1
    assert WebhookDelivery.objects.filter(event_type="message.delivered").count() == 0  # no hooks
    owner.mailbox.webhook_url = "https://hooks.example.org/x"
    owner.mailbox.save()
    later = payload("postmark_delivery.json") | {"Recipient": "jane@example.com"}
    post(EVENTS, later)
    assert WebhookDelivery.objects.filter(event_type="message.delivered").count() == 1


@override_settings(ANYMAIL=ANYMAIL)
def test_hard_bounce_suppresses_the_address(owner: Tenant) -> None:
    owner.mailbox.webhook_url = "https://hooks.example.org/x"
    owner.mailbox.save()
    email = _sent(owner)
    assert post(EVENTS, payload("postmark_bounce.json")).json()["processed"] == 1
    assert post(EVENTS, payload("postmark_bounce.json")).json()["processed"] == 0
    email.refresh_from_db()
    assert email.bounce_type == "hard"
    assert email.bounced_at is not None
    entry = Suppression.objects.get(account=owner.account)
    assert (entry.email_address, entry.reason) == ("john@example.com", "hard_bounce")
    hook = WebhookDelivery.objects.get(event_type="message.bounced")
    assert hook.payload["data"]["bounce_type"] == "hard"


@override_settings(ANYMAIL=ANYMAIL)
def test_soft_bounce_is_recorded_without_suppression(owner: Tenant) -> None:
    email = _sent(owner)
    soft = payload("postmark_bounce.json") | {"Type": "SoftBounce", "ID": 99}
    assert post(EVENTS, soft).json()["processed"] == 1
    email.refresh_from_db()
    assert email.bounce_type == "soft"
    assert not Suppression.objects.exists()


@override_settings(ANYMAIL=ANYMAIL)
def test_complaint_suppresses_and_emits(owner: Tenant) -> None:
    owner.mailbox.webhook_url = "https://hooks.example.org/x"
    owner.mailbox.save()
    _sent(owner)
    assert post(EVENTS, payload("postmark_complaint.json")).json()["processed"] == 1
    assert Suppression.objects.get().reason == "complaint"
    assert WebhookDelivery.objects.filter(event_type="message.complained").exists()


@override_settings(ANYMAIL=ANYMAIL)
def test_event_for_an_unknown_message_is_acknowledged(db: Any) -> None:
    response = post(EVENTS, payload("postmark_bounce.json"))
    assert response.json() == {"received": True, "processed": 0}


@override_settings(ANYMAIL=ANYMAIL)
def test_opens_are_acknowledged_and_ignored(owner: Tenant) -> None:
    _sent(owner)
    open_event = {"RecordType": "Open", "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483"}
    assert post(EVENTS, open_event).json() == {"received": True, "processed": 0}


def _bulk_sent(tenant: Tenant, count: int) -> list[Email]:
    now = timezone.now()
    return [
        _sent(tenant, provider_message_id=f"pm-{i}", to=[f"r{i}@example.com"], sent_at=now)
        for i in range(count)
    ]


@override_settings(ANYMAIL=ANYMAIL)
def test_bounce_rate_over_five_percent_disables_sending(owner: Tenant) -> None:
    _bulk_sent(owner, ENFORCEMENT_MIN_SENDS)
    for i in range(5):  # exactly 5%: still allowed
        post(EVENTS, payload("postmark_bounce.json") | {"ID": i, "MessageID": f"pm-{i}"})
    assert not Account.objects.get(pk=owner.account.pk).sending_disabled
    post(EVENTS, payload("postmark_bounce.json") | {"ID": 5, "MessageID": "pm-5"})
    account = Account.objects.get(pk=owner.account.pk)
    assert account.sending_disabled
    assert "Bounce rate" in account.sending_disabled_reason


@override_settings(ANYMAIL=ANYMAIL)
def test_complaint_rate_over_threshold_disables_sending(owner: Tenant) -> None:
    _bulk_sent(owner, 400)
    complaint = payload("postmark_complaint.json")
    post(EVENTS, complaint | {"ID": 1, "MessageID": "pm-1"})  # 0.25%: allowed
    assert not Account.objects.get(pk=owner.account.pk).sending_disabled
    post(EVENTS, complaint | {"ID": 2, "MessageID": "pm-2"})  # 0.5%: over 0.3%
    account = Account.objects.get(pk=owner.account.pk)
    assert account.sending_disabled
    assert "complaint rate" in account.sending_disabled_reason


@override_settings(ANYMAIL=ANYMAIL)
def test_small_samples_are_not_enforced(owner: Tenant) -> None:
    _bulk_sent(owner, 10)
    for i in range(10):
        post(EVENTS, payload("postmark_bounce.json") | {"ID": i, "MessageID": f"pm-{i}"})
    assert not Account.objects.get(pk=owner.account.pk).sending_disabled


def test_old_sends_are_outside_the_window(owner: Tenant) -> None:
    old = timezone.now() - timedelta(days=31)
    _sent(owner, sent_at=old)
    assert reputation_rates(account=owner.account).sends == 0


@override_settings(ANYMAIL=ANYMAIL)
def test_inbound_json_reaches_every_recipient_mailbox_once(owner: Tenant, other: Tenant) -> None:
    body = payload("postmark_inbound.json") | {
        "Subject": "Grüße aus Köln ✓",
        "FromFull": {"Email": "jorg@example.de", "Name": "Jörg Müller", "MailboxHash": ""},
        "ToFull": [
            {"Email": owner.mailbox.address, "Name": "Zoë"},
            {"Email": "someone@example.org", "Name": ""},
        ],
        "CcFull": [{"Email": owner.mailbox.address.upper(), "Name": ""}],
        # A Bcc recipient is known only from Postmark's fields, never from the headers.
        "BccFull": [{"Email": other.mailbox.address, "Name": ""}],
        "OriginalRecipient": owner.mailbox.address,
        "Attachments": [
            {
                "Name": "crlf.bin",
                "Content": base64.b64encode(b"a\r\nb\x00\xff").decode(),
                "ContentType": "application/octet-stream",
            }
        ],
    }
    assert post(INBOUND, body).json() == {"received": True, "processed": 2}
    for tenant in (owner, other):
        email = Email.objects.get(mailbox=tenant.mailbox)
        assert email.subject == "Grüße aus Köln ✓"
        assert email.from_address == "jorg@example.de"
        assert email.headers["From"] == "Jörg Müller <jorg@example.de>"
        assert email.to == [owner.mailbox.address, "someone@example.org"]
        assert bytes(email.attachments.get().content) == b"a\r\nb\x00\xff"
