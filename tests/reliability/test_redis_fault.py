"""Redis (cache and broker) crashes and comes back.

While it is down, whatever needs it answers service_unavailable with Retry-After instead
of a 500; mail accepted before the crash, whose queued tasks died with Redis, is sent by
the sweep once it is back: nothing lost, nothing sent twice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from mailboxes.models import Email, EmailStatus
from tests.conftest import Tenant, assert_error
from tests.reliability.conftest import RedisServer, point_celery_at

pytestmark = pytest.mark.django_db(transaction=True)


def _send(client: Any, tenant: Tenant, n: int, **headers: str) -> Any:
    return client.post(
        f"/v1/mailboxes/{tenant.mailbox.id}/send",
        {"to": [f"rcpt{n}@example.com"], "subject": f"Report {n}", "markdown": f"Body {n}"},
        format="json",
        **headers,
    )


def test_cache_down_answers_service_unavailable_then_recovers(
    redis_backed: RedisServer, owner: Tenant, api: Callable[..., Any]
) -> None:
    client = api("admin", "send")
    assert client.get("/v1/account").status_code == 200

    redis_backed.stop()
    # Throttled read: the per-key budget lives in the cache.
    assert_error(client.get("/v1/account"), "service_unavailable")
    # A POST with Idempotency-Key: its claim is in the database, but the request still needs
    # its budget; the 503 frees the key, so the retry below may use it.
    assert_error(
        client.post(
            "/v1/mailboxes", {"address_local": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1"
        ),
        "service_unavailable",
    )
    # Send: budget and queue both need Redis.
    assert_error(_send(client, owner, 1), "service_unavailable")
    assert not Email.objects.exists()
    # The load balancer's view: degraded, naming what is down.
    health = client.get("/health")
    assert health.status_code == 503
    assert health.json()["status"] == "degraded"
    assert health.json()["checks"]["cache"] == "unavailable"
    assert health.json()["checks"]["broker"] == "unavailable"
    assert health.json()["checks"]["database"] == "ok"
    assert health["Retry-After"] == "5"

    redis_backed.start()
    assert client.get("/v1/account").status_code == 200
    assert client.get("/health").json()["status"] == "ok"
    retried = client.post(
        "/v1/mailboxes", {"address_local": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1"
    )
    assert retried.status_code == 201, retried.content


def test_sends_queued_when_redis_crashed_are_swept_after_restart(
    redis_backed: RedisServer, owner: Tenant, api: Callable[..., Any]
) -> None:
    from mailboxes.tasks import sweep_stuck_emails

    client = api("send", "read")
    accepted = []
    for n in range(3):
        response = _send(client, owner, n)
        assert response.status_code == 202, response.content
        accepted.append(response.json()["id"])
    # No worker is running: the three tasks wait in the broker, which now crashes and,
    # without persistence, forgets them.
    redis_backed.stop()
    assert_error(_send(client, owner, 99), "service_unavailable")
    redis_backed.start()
    assert mail.outbox == []
    assert set(Email.objects.values_list("id", flat=True)) == set(accepted)

    # Beat's sweep runs once the emails have been stuck past its threshold; tasks it
    # enqueues run in-process here, standing in for a worker.
    Email.objects.filter(id__in=accepted).update(
        status_changed_at=timezone.now() - timedelta(hours=1)
    )
    point_celery_at(None, eager=True)
    sweep_stuck_emails()
    sweep_stuck_emails()  # a second pass (or a duplicate beat tick) changes nothing

    statuses = dict(Email.objects.values_list("id", "status"))
    assert set(statuses.values()) == {EmailStatus.SENT}, statuses
    recipients = sorted(message.to[0] for message in mail.outbox)
    assert recipients == ["rcpt0@example.com", "rcpt1@example.com", "rcpt2@example.com"]


def test_broker_down_alone_accepts_and_the_sweep_sends_later(
    broker_only: RedisServer, owner: Tenant, api: Callable[..., Any]
) -> None:
    """With the cache up, a send is still accepted while the broker is down: the email is
    stored before the enqueue is attempted, and the enqueue failing after commit leaves it
    for the sweep rather than failing a request whose work is already saved."""
    from mailboxes.tasks import sweep_stuck_emails

    client = api("send")
    broker_only.stop()
    body = {"to": ["a@example.org"], "subject": "Quote", "markdown": "m", "idempotency_key": "q1"}
    accepted = client.post(f"/v1/mailboxes/{owner.mailbox.id}/send", body, format="json")
    assert accepted.status_code == 202, accepted.content
    email_id = accepted.json()["id"]
    assert Email.objects.get(pk=email_id).status == EmailStatus.PENDING_SCAN
    # The agent's retry with the same idempotency_key finds the stored email.
    again = client.post(f"/v1/mailboxes/{owner.mailbox.id}/send", body, format="json")
    assert again.status_code == 200
    assert again.json()["id"] == email_id

    broker_only.start()
    Email.objects.filter(pk=email_id).update(status_changed_at=timezone.now() - timedelta(hours=1))
    point_celery_at(None, eager=True)
    sweep_stuck_emails()
    assert Email.objects.get(pk=email_id).status == EmailStatus.SENT
    assert [message.to for message in mail.outbox] == [["a@example.org"]]
