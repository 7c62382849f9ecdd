"""A provider webhook delivered twice *at the same time* is processed once.

Postmark retries a webhook it thinks timed out while the first delivery may still be in
progress; sequential redeliveries are covered with the webhooks themselves. Here several
identical deliveries race, each on its own thread and database connection, and all must
be acknowledged (200, so the provider stops retrying) while only one has an effect.
"""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from mailboxes.models import (
    DeliveryEvent,
    Direction,
    Email,
    EmailStatus,
    Suppression,
    WebhookDelivery,
)
from tests.conftest import Tenant, start_and_join
from tests.inbound.conftest import make_email

pytestmark = pytest.mark.django_db(transaction=True)

FIXTURES = Path(__file__).resolve().parents[1] / "inbound" / "fixtures"
SECRET = "postmark:race-secret"
RACERS = 6


@pytest.fixture(autouse=True)
def _webhook_secret(settings: Any) -> None:
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET}


def _race(path: str, payload: dict[str, Any]) -> list[Any]:
    """POST the same body from RACERS threads released at once."""
    barrier = threading.Barrier(RACERS)
    responses: list[Any] = [None] * RACERS
    auth = "Basic " + base64.b64encode(SECRET.encode()).decode()

    def deliver(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            responses[index] = Client().post(
                path,
                data=json.dumps(payload),
                content_type="application/json",
                HTTP_AUTHORIZATION=auth,
            )
        finally:
            connection.close()  # each thread opened its own

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(RACERS)]
    start_and_join(threads, timeout=60)
    return responses


def _load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def _all_acknowledged(responses: list[Any]) -> list[int]:
    assert [r.status_code for r in responses] == [200] * RACERS, [
        (r.status_code, r.content[:200]) for r in responses
    ]
    return [r.json()["processed"] for r in responses]


def test_concurrent_duplicate_bounce_is_processed_once(owner: Tenant) -> None:
    owner.mailbox.webhook_url = "https://hooks.example.org/x"
    owner.mailbox.save()
    email = make_email(
        owner.mailbox,
        direction=Direction.OUTBOUND,
        status=EmailStatus.SENT,
        from_address=owner.mailbox.address,
        to=["john@example.com"],
        provider_message_id="883953f4-6105-42a2-a16a-77a8eac79483",
    )
    processed = _all_acknowledged(_race("/v1/webhooks/postmark", _load("postmark_bounce.json")))
    assert sorted(processed) == [0] * (RACERS - 1) + [1]
    assert DeliveryEvent.objects.filter(email=email).count() == 1
    assert Suppression.objects.filter(account=owner.account).count() == 1
    assert WebhookDelivery.objects.filter(event_type="message.bounced").count() == 1


def test_concurrent_duplicate_inbound_is_stored_once(owner: Tenant) -> None:
    payload = _load("postmark_inbound.json")
    processed = _all_acknowledged(_race("/v1/webhooks/postmark-inbound", payload))
    assert sum(processed) >= 1
    emails = Email.objects.filter(mailbox=owner.mailbox, direction=Direction.INBOUND)
    assert emails.count() == 1, list(emails.values_list("id", "message_id"))
