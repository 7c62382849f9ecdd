"""Sends and inbound deliveries racing on one mailbox never deadlock.

Both paths lock the mailbox (and a send the account first); if one path takes the two
row locks in the other order, PostgreSQL aborts one of them with a deadlock and the
client gets a 503. Several rounds of simultaneous sends and inbound webhooks, each on its
own thread and connection, must all succeed.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from mailboxes.models import Direction, Email
from tests.conftest import Tenant, start_and_join

pytestmark = pytest.mark.django_db(transaction=True)

FIXTURE = Path(__file__).resolve().parents[1] / "inbound" / "fixtures" / "postmark_inbound.json"
SECRET = "postmark:lock-order"
ROUNDS = 4
PER_SIDE = 3


def test_concurrent_sends_and_inbound_do_not_deadlock(
    owner: Tenant, api: Callable[..., Any], settings: Any
) -> None:
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET}
    from accounts.services import api_key_create

    _, key = api_key_create(account=owner.account, name="race", scopes=["send"])
    inbound = json.loads(FIXTURE.read_text())
    auth = "Basic " + base64.b64encode(SECRET.encode()).decode()
    failures: list[tuple[str, int, bytes]] = []
    lock = threading.Lock()

    def send(n: int) -> Any:
        return Client().post(
            f"/v1/mailboxes/{owner.mailbox.pk}/send",
            data=json.dumps({"to": ["x@example.org"], "subject": f"S{n}", "markdown": "m"}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {key}",
        )

    def receive(n: int) -> Any:
        payload = dict(inbound, MessageID=f"race-{n}")
        payload["Headers"] = [
            h for h in inbound.get("Headers", []) if h["Name"] != "Message-ID"
        ] + [{"Name": "Message-ID", "Value": f"<race-{n}@example.org>"}]
        return Client().post(
            "/v1/webhooks/postmark-inbound",
            data=json.dumps(payload),
            content_type="application/json",
            HTTP_AUTHORIZATION=auth,
        )

    for round_number in range(ROUNDS):
        barrier = threading.Barrier(2 * PER_SIDE)

        def run(call: Callable[[int], Any], n: int, barrier: threading.Barrier) -> None:
            try:
                barrier.wait(timeout=10)
                response = call(n)
                if response.status_code not in (200, 202):
                    with lock:
                        failures.append((call.__name__, response.status_code, response.content))
            finally:
                connection.close()

        threads = [
            threading.Thread(target=run, args=(call, round_number * 100 + i, barrier))
            for i in range(PER_SIDE)
            for call in (send, receive)
        ]
        start_and_join(threads, timeout=60)
    assert failures == []
    assert Email.objects.filter(direction=Direction.INBOUND).count() == ROUNDS * PER_SIDE
    assert Email.objects.filter(direction=Direction.OUTBOUND).count() == ROUNDS * PER_SIDE
