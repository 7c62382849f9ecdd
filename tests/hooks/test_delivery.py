"""Webhook delivery over real HTTP to a local receiver: signing, retries, the guard at
delivery time (DNS rebinding), auto-disable, and the beat sweep."""

from __future__ import annotations

import json
import socket
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from mailboxes.events import emit_event
from mailboxes.models import WebhookDelivery, WebhookEvent, WebhookSubscription
from mailboxes.services import webhooks
from mailboxes.webhook_tasks import deliver_due_webhooks
from tests.hooks.conftest import verify_signature


def subscribe(owner: Any, url: str, **fields: Any) -> WebhookSubscription:
    return WebhookSubscription.objects.create(
        account=owner.account,
        url=url,
        events=["message.received", "oversight.pending"],
        signing_secret=webhooks.new_signing_secret(),
        **fields,
    )


def emit(owner: Any, capture: Any) -> list[WebhookDelivery]:
    with capture(execute=True):
        return emit_event(
            account=owner.account,
            event_type=WebhookEvent.MESSAGE_RECEIVED,
            data={"email_id": "e1", "subject": "Hi"},
            mailbox=owner.mailbox,
        )


def make_due(delivery: WebhookDelivery) -> None:
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_delivered_and_signed(
    owner: Any, receiver: Any, allow_private: None, django_capture_on_commit_callbacks: Any
) -> None:
    subscription = subscribe(owner, receiver.url)
    (delivery,) = emit(owner, django_capture_on_commit_callbacks)
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.DELIVERED
    assert delivery.attempts == 1
    assert delivery.response_status == 200
    assert delivery.last_attempt_at is not None

    (request,) = receiver.requests
    assert request.path == "/hook"
    assert request.headers["X-MultiMail-Event"] == "message.received"
    assert request.headers["X-MultiMail-Delivery"] == delivery.pk
    assert request.headers["Content-Type"] == "application/json"
    signature = request.headers["X-MultiMail-Signature"]
    assert verify_signature(signature, request.body, subscription.signing_secret)
    assert not verify_signature(signature, request.body + b" ", subscription.signing_secret)
    assert not verify_signature(signature, request.body, "whsec_wrong")
    body = json.loads(request.body)
    assert body["type"] == "message.received"
    assert body["data"] == {"email_id": "e1", "subject": "Hi"}
    assert body["mailbox_id"] == owner.mailbox.pk


def test_replayed_signature_outside_tolerance_is_rejected(
    owner: Any, receiver: Any, allow_private: None, django_capture_on_commit_callbacks: Any
) -> None:
    subscription = subscribe(owner, receiver.url)
    emit(owner, django_capture_on_commit_callbacks)
    (request,) = receiver.requests
    header = request.headers["X-MultiMail-Signature"]
    sent_at = int(header.split(",")[0].removeprefix("t="))
    assert verify_signature(header, request.body, subscription.signing_secret, now=sent_at + 299)
    assert not verify_signature(
        header, request.body, subscription.signing_secret, now=sent_at + 301
    )


def test_rotation_signs_with_both_secrets(
    api: Any,
    owner: Any,
    receiver: Any,
    allow_private: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    subscription = subscribe(owner, receiver.url)
    old_secret = subscription.signing_secret
    new_secret = (
        api("admin").post(f"/v1/webhooks/{subscription.pk}/rotate-secret").json()["signing_secret"]
    )
    emit(owner, django_capture_on_commit_callbacks)
    (request,) = receiver.requests
    header = request.headers["X-MultiMail-Signature"]
    assert header.count("v1=") == 2
    assert verify_signature(header, request.body, old_secret)
    assert verify_signature(header, request.body, new_secret)
    # After the grace period only the new secret signs.
    WebhookSubscription.objects.filter(pk=subscription.pk).update(
        previous_secret_expires_at=timezone.now() - timedelta(seconds=1)
    )
    emit(owner, django_capture_on_commit_callbacks)
    header = receiver.requests[1].headers["X-MultiMail-Signature"]
    assert header.count("v1=") == 1
    assert verify_signature(header, receiver.requests[1].body, new_secret)
    assert not verify_signature(header, receiver.requests[1].body, old_secret)


def test_retried_after_receiver_error_then_delivered(
    owner: Any, start_receiver: Any, allow_private: None, django_capture_on_commit_callbacks: Any
) -> None:
    receiver = start_receiver(statuses=[500, 200])
    subscribe(owner, receiver.url)
    before = timezone.now()
    (delivery,) = emit(owner, django_capture_on_commit_callbacks)
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.PENDING
    assert delivery.attempts == 1
    assert delivery.response_status == 500
    assert "500" in delivery.last_error
    # First retry in about a minute (with jitter).
    assert (
        before + timedelta(seconds=45) < delivery.next_attempt_at < before + timedelta(seconds=80)
    )
    subscription = delivery.subscription
    assert subscription is not None
    subscription.refresh_from_db()
    assert subscription.failing_since is not None

    # Not due yet: the sweep leaves it alone.
    assert deliver_due_webhooks() == 0
    make_due(delivery)
    assert deliver_due_webhooks() == 1
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.DELIVERED
    assert delivery.attempts == 2
    assert delivery.response_status == 200
    assert delivery.last_error == ""
    assert len(receiver.requests) == 2
    # The same delivery id both times: receivers deduplicate on it.
    assert {r.headers["X-MultiMail-Delivery"] for r in receiver.requests} == {delivery.pk}
    subscription.refresh_from_db()
    assert subscription.failing_since is None


def test_retried_after_connection_refused(
    owner: Any, start_receiver: Any, allow_private: None, django_capture_on_commit_callbacks: Any
) -> None:
    port = free_port()
    subscribe(owner, f"http://127.0.0.1:{port}/hook")
    (delivery,) = emit(owner, django_capture_on_commit_callbacks)
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.PENDING
    assert delivery.attempts == 1
    assert delivery.response_status is None
    assert delivery.last_error

    receiver = start_receiver(port=port)
    make_due(delivery)
    deliver_due_webhooks()
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.DELIVERED
    assert delivery.attempts == 2
    assert len(receiver.requests) == 1


def test_redirects_are_not_followed(
    owner: Any, start_receiver: Any, allow_private: None, django_capture_on_commit_callbacks: Any
) -> None:
    receiver = start_receiver(statuses=[302])
    subscribe(owner, receiver.url)
    (delivery,) = emit(owner, django_capture_on_commit_callbacks)
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.PENDING
    assert delivery.response_status == 302
    assert len(receiver.requests) == 1


def test_connects_to_vetted_address_with_host_header_of_the_name(
    owner: Any,
    receiver: Any,
    allow_private: None,
    fake_hosts: dict[str, list[str]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    fake_hosts["hooks.customer.test"] = ["127.0.0.1"]
    subscribe(owner, f"http://hooks.customer.test:{receiver.port}/hook")
    (delivery,) = emit(owner, django_capture_on_commit_callbacks)
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.DELIVERED
    assert receiver.requests[0].headers["Host"] == f"hooks.customer.test:{receiver.port}"


def test_dns_rebinding_blocked_at_delivery_time(
    api: Any,
    owner: Any,
    receiver: Any,
    fake_hosts: dict[str, list[str]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    fake_hosts["rebind.example.com"] = ["93.184.216.34"]
    created = api("admin").post(
        "/v1/webhooks",
        {"url": "https://rebind.example.com/hook", "events": ["message.received"]},
        format="json",
    )
    assert created.status_code == 201
    # The attacker's name now answers with loopback.
    fake_hosts["rebind.example.com"] = ["127.0.0.1"]
    (delivery,) = emit(owner, django_capture_on_commit_callbacks)
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.PENDING
    assert delivery.response_status is None
    assert "non-public" in delivery.last_error
    assert receiver.requests == []


def test_mailbox_webhook_url_target_is_vetted_too(
    owner: Any, fake_hosts: dict[str, list[str]], django_capture_on_commit_callbacks: Any
) -> None:
    owner.mailbox.webhook_url = "https://169.254.169.254/latest/meta-data"
    owner.mailbox.save(update_fields=["webhook_url"])
    (delivery,) = emit(owner, django_capture_on_commit_callbacks)
    delivery.refresh_from_db()
    assert delivery.subscription is None
    assert "non-public" in delivery.last_error


def test_gives_up_after_max_attempts(
    owner: Any, start_receiver: Any, allow_private: None, django_capture_on_commit_callbacks: Any
) -> None:
    receiver = start_receiver(statuses=[503])
    subscribe(owner, receiver.url)
    (delivery,) = emit(owner, django_capture_on_commit_callbacks)
    for _ in range(webhooks.MAX_ATTEMPTS - 1):
        make_due(delivery)
        deliver_due_webhooks()
    delivery.refresh_from_db()
    assert delivery.attempts == webhooks.MAX_ATTEMPTS
    assert delivery.status == WebhookDelivery.Status.FAILED
    make_due(delivery)
    assert deliver_due_webhooks() == 0


def test_backoff_grows_and_is_capped() -> None:
    delays = [webhooks.retry_delay(n).total_seconds() for n in range(1, webhooks.MAX_ATTEMPTS)]
    assert 48 <= delays[0] <= 72
    assert 96 <= delays[1] <= 144
    assert max(delays) <= webhooks.MAX_DELAY_SECONDS * 1.2
    assert 12 * 3600 < sum(delays) < 30 * 3600


def test_subscription_failing_for_days_is_disabled_and_operator_told(
    owner: Any, start_receiver: Any, allow_private: None, django_capture_on_commit_callbacks: Any
) -> None:
    receiver = start_receiver(statuses=[500])
    subscription = subscribe(
        owner, receiver.url, failing_since=timezone.now() - timedelta(days=3, minutes=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        emit(owner, django_capture_on_commit_callbacks)
    subscription.refresh_from_db()
    assert subscription.is_active is False
    assert "3 days" in subscription.disabled_reason
    assert any("webhook was disabled" in message.subject for message in mail.outbox)
    assert mail.outbox[-1].to == [owner.account.oversight_email]
    # New events skip it; pending ones fail without being sent.
    assert emit(owner, django_capture_on_commit_callbacks) == []


def test_recent_failures_do_not_disable(
    owner: Any, start_receiver: Any, allow_private: None, django_capture_on_commit_callbacks: Any
) -> None:
    receiver = start_receiver(statuses=[500])
    subscription = subscribe(owner, receiver.url, failing_since=timezone.now() - timedelta(days=2))
    emit(owner, django_capture_on_commit_callbacks)
    subscription.refresh_from_db()
    assert subscription.is_active is True


def test_lost_task_is_picked_up_by_the_sweep(
    owner: Any, receiver: Any, allow_private: None
) -> None:
    subscription = subscribe(owner, receiver.url)
    # Created without any task enqueued, as if the broker lost it.
    delivery = WebhookDelivery.objects.create(
        account=owner.account,
        subscription=subscription,
        event_type="message.sent",
        url=receiver.url,
        payload={"id": "x", "type": "message.sent", "data": {}},
    )
    assert deliver_due_webhooks() == 1
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.DELIVERED


def test_concurrent_attempts_send_once(owner: Any, receiver: Any, allow_private: None) -> None:
    subscription = subscribe(owner, receiver.url)
    delivery = WebhookDelivery.objects.create(
        account=owner.account,
        subscription=subscription,
        event_type="message.sent",
        url=receiver.url,
        payload={},
    )
    webhooks.webhook_delivery_attempt(delivery_id=delivery.pk)
    webhooks.webhook_delivery_attempt(delivery_id=delivery.pk)
    assert len(receiver.requests) == 1


def test_test_endpoint_sends_test_event(
    api: Any,
    owner: Any,
    receiver: Any,
    allow_private: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    subscription = subscribe(owner, receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        response = api("admin").post(f"/v1/webhooks/{subscription.pk}/test")
    assert response.status_code == 202
    assert response.json()["event_type"] == "webhook.test"
    (request,) = receiver.requests
    assert request.headers["X-MultiMail-Event"] == "webhook.test"
    assert verify_signature(
        request.headers["X-MultiMail-Signature"], request.body, subscription.signing_secret
    )
    listed = api("admin").get("/v1/webhook-deliveries").json()["deliveries"]
    assert listed[0]["status"] == "delivered"
    assert listed[0]["response_status"] == 200


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.16.0.1", False),
        ("192.168.0.1", False),
        ("169.254.169.254", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::", False),
        ("ff02::1", False),
        ("::ffff:10.0.0.1", False),
        ("240.0.0.1", False),
    ],
)
def test_is_public_address(address: str, public: bool) -> None:
    from mailboxes.services.netguard import is_public_address

    assert is_public_address(address) is public
