"""Outgoing webhooks: subscriptions, signing, delivery with retries, and auto-disable.

Delivery contract (documented in the README):

* POST with a JSON body, ``Content-Type: application/json``;
* ``X-MultiMail-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>]`` where each ``v1`` is
  HMAC-SHA256(secret, f"{t}.{raw body}"); during a secret rotation both the new and the old
  secret sign, so a receiver accepts either while it switches over. The secret is the
  subscription's, or for a mailbox's own ``webhook_url`` / ``oversight_webhook_url`` the
  mailbox's (``GET /v1/mailboxes/{id}/webhook-secret``);
* ``X-MultiMail-Event`` (event type) and ``X-MultiMail-Delivery`` (the delivery id, stable
  across retries: receivers dedupe on it);
* any 2xx within the timeout is success; anything else is retried with exponential backoff
  and jitter for about a day, every attempt recorded on the delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import urllib3
from django.db import transaction
from django.utils import timezone

from accounts.actors import Actor
from accounts.models import Account
from accounts.plans import limits_for
from accounts.services import audit_record, operator_email_send
from mailboxes import enqueue
from mailboxes.models import (
    Mailbox,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
    new_signing_secret,
)
from mailboxes.services.mailboxes import mailbox_get
from mailboxes.services.netguard import (
    PostAnswer,
    UnsafeTarget,
    network_error_sentence,
    pinned_post,
    url_vet,
)
from multimail.backoff import backoff_delay
from multimail.errors import ApiError, not_found
from multimail.ids import new_id

logger = logging.getLogger("multimail.webhooks")

ROTATION_GRACE = timedelta(hours=24)
TIMEOUT_SECONDS = 10.0
# 1, 2, 4, ... minutes, capped at 6 hours: 12 attempts span roughly 20 hours.
MAX_ATTEMPTS = 12
BASE_DELAY_SECONDS = 60
MAX_DELAY_SECONDS = 6 * 3600
# A claimed delivery is not picked up again for this long (longer than one attempt), so the
# on-commit task and the beat sweep never send the same attempt twice.
CLAIM_LEASE = timedelta(minutes=2)
# A subscription whose deliveries have failed without a single success for this long is
# switched off and the operator told: a dead endpoint should not be retried forever.
DISABLE_AFTER = timedelta(days=3)
TEST_EVENT = "webhook.test"
USER_AGENT = "MultiMail-Webhooks/1"


def signature_header(*, signing_secrets: list[str], timestamp: int, body: bytes) -> str:
    signed = f"{timestamp}.".encode() + body
    parts = [f"t={timestamp}"]
    for secret in signing_secrets:
        digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        parts.append(f"v1={digest}")
    return ",".join(parts)


def _signing_secrets(
    current: str, previous: str, previous_expires_at: datetime | None
) -> list[str]:
    keys = [current]
    if previous and previous_expires_at and previous_expires_at > timezone.now():
        keys.append(previous)
    return keys


def _delivery_secrets(delivery: WebhookDelivery) -> list[str]:
    """The secrets that sign a delivery: its subscription's, else its mailbox's."""
    if delivery.subscription is not None:
        sub = delivery.subscription
        return _signing_secrets(
            sub.signing_secret, sub.previous_secret, sub.previous_secret_expires_at
        )
    if delivery.mailbox is not None:
        box = delivery.mailbox
        return _signing_secrets(
            box.webhook_signing_secret,
            box.webhook_previous_secret,
            box.webhook_previous_secret_expires_at,
        )
    return []


def _validated_url(url: str) -> str:
    try:
        url_vet(url)
    except UnsafeTarget as exc:
        raise ApiError("invalid_parameter", str(exc), param="url") from exc
    return url


def _validated_events(events: list[str]) -> list[str]:
    allowed = set(WebhookEvent.values)
    unknown = [event for event in events if event not in allowed]
    if unknown or not events:
        raise ApiError(
            "invalid_parameter",
            (f"Unknown event type {unknown[0]!r}. " if unknown else "events is empty. ")
            + f"Use any of: {', '.join(WebhookEvent.values)}.",
            param="events",
        )
    return list(dict.fromkeys(events))


def subscription_get(*, account: Account, subscription_id: str) -> WebhookSubscription:
    subscription = WebhookSubscription.objects.filter(account=account, pk=subscription_id).first()
    if subscription is None:
        raise not_found("webhook")
    return subscription


def _check_webhook_limit(account: Account) -> None:
    limits = limits_for(account.plan)
    if WebhookSubscription.objects.filter(account=account).count() >= limits.max_webhooks:
        raise ApiError(
            "limit_exceeded",
            f"The {limits.title} plan allows {limits.max_webhooks} webhooks. Delete one with "
            "DELETE /v1/webhooks/{id} or upgrade with POST /v1/billing/checkout.",
            limit=limits.max_webhooks,
            plan=account.plan,
        )


def subscription_validate(
    *, account: Account, url: str, events: list[str], mailbox_id: str | None
) -> dict[str, Any]:
    """Check a create request before the approval gate, so an agent is told about a bad URL
    or a full plan at once rather than after the operator approved it. Returns the
    normalised params; ``subscription_create`` checks the limit again under the lock."""
    _check_webhook_limit(account)
    if (
        mailbox_id
        and not Mailbox.objects.filter(
            account=account, pk=mailbox_id, deleted_at__isnull=True
        ).exists()
    ):
        raise not_found("mailbox")
    return {
        "url": _validated_url(url),
        "events": _validated_events(events),
        "mailbox_id": mailbox_id or None,
    }


@transaction.atomic
def subscription_create(
    *,
    actor: Actor,
    url: str,
    events: list[str],
    mailbox_id: str | None = None,
    request_id: str = "",
) -> WebhookSubscription:
    params = subscription_validate(
        account=actor.account, url=url, events=events, mailbox_id=mailbox_id
    )
    # Lock the account row so two concurrent creates cannot both pass the count check.
    account = Account.objects.select_for_update().get(pk=actor.account.pk)
    _check_webhook_limit(account)
    subscription = WebhookSubscription.objects.create(
        account=account,
        mailbox_id=params["mailbox_id"],
        url=params["url"],
        events=params["events"],
        signing_secret=new_signing_secret(),
    )
    audit_record(
        actor=actor,
        action="webhook.created",
        resource_type="webhook",
        resource_id=subscription.pk,
        metadata={"url": subscription.url, "events": subscription.events},
        request_id=request_id,
    )
    return subscription


@transaction.atomic
def subscription_delete(*, actor: Actor, subscription_id: str, request_id: str = "") -> None:
    subscription = subscription_get(account=actor.account, subscription_id=subscription_id)
    subscription.delete()
    audit_record(
        actor=actor,
        action="webhook.deleted",
        resource_type="webhook",
        resource_id=subscription_id,
        request_id=request_id,
    )


@transaction.atomic
def subscription_rotate_secret(
    *, actor: Actor, subscription_id: str, request_id: str = ""
) -> WebhookSubscription:
    """New secret now; the old one keeps signing (as a second ``v1``) for 24 hours."""
    subscription = (
        WebhookSubscription.objects.select_for_update()
        .filter(account=actor.account, pk=subscription_id)
        .first()
    )
    if subscription is None:
        raise not_found("webhook")
    subscription.previous_secret = subscription.signing_secret
    subscription.previous_secret_expires_at = timezone.now() + ROTATION_GRACE
    subscription.signing_secret = new_signing_secret()
    subscription.save(
        update_fields=["previous_secret", "previous_secret_expires_at", "signing_secret"]
    )
    audit_record(
        actor=actor,
        action="webhook.secret_rotated",
        resource_type="webhook",
        resource_id=subscription.pk,
        request_id=request_id,
    )
    return subscription


@transaction.atomic
def mailbox_webhook_secret_rotate(
    *, actor: Actor, mailbox_id: str, request_id: str = ""
) -> Mailbox:
    """New mailbox secret now; the old one keeps signing for 24 hours, as for a
    subscription. Not gated by the operator: it grants nothing the admin key does not
    already have (it can read the secret), and receivers keep verifying through the grace."""
    mailbox = mailbox_get(account=actor.account, mailbox_id=mailbox_id, for_update=True)
    mailbox.webhook_previous_secret = mailbox.webhook_signing_secret
    mailbox.webhook_previous_secret_expires_at = timezone.now() + ROTATION_GRACE
    mailbox.webhook_signing_secret = new_signing_secret()
    mailbox.save(
        update_fields=[
            "webhook_previous_secret",
            "webhook_previous_secret_expires_at",
            "webhook_signing_secret",
        ]
    )
    audit_record(
        actor=actor,
        action="mailbox.webhook_secret_rotated",
        resource_type="mailbox",
        resource_id=mailbox.pk,
        request_id=request_id,
    )
    return mailbox


@transaction.atomic
def subscription_test(*, actor: Actor, subscription_id: str) -> WebhookDelivery:
    """Queue a ``webhook.test`` event to this subscription alone (also when it is disabled,
    which is how an operator checks a repaired endpoint before re-creating it)."""
    subscription = subscription_get(account=actor.account, subscription_id=subscription_id)
    event_id = new_id()
    delivery = WebhookDelivery.objects.create(
        account=actor.account,
        subscription=subscription,
        mailbox=subscription.mailbox,
        event_id=event_id,
        event_type=TEST_EVENT,
        url=subscription.url,
        payload={
            "id": event_id,
            "type": TEST_EVENT,
            "account_id": actor.account.pk,
            "mailbox_id": subscription.mailbox_id,
            "data": {"message": "Test event from MultiMail. Your endpoint works."},
        },
    )
    enqueue.deliver_webhook_after_commit(delivery.pk)
    return delivery


def webhook_deliveries_due(*, limit: int = 500) -> list[str]:
    return list(
        WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=timezone.now()
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def retry_delay(attempts: int) -> timedelta:
    return backoff_delay(attempts, base_seconds=BASE_DELAY_SECONDS, max_seconds=MAX_DELAY_SECONDS)


def webhook_delivery_attempt(*, delivery_id: str) -> None:
    """One attempt at one delivery. Safe to call twice: the claim lets one caller through."""
    now = timezone.now()
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id, status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now
    ).update(next_attempt_at=now + CLAIM_LEASE)
    if not claimed:
        return
    delivery = WebhookDelivery.objects.select_related("subscription", "mailbox").get(pk=delivery_id)
    subscription = delivery.subscription
    if (
        subscription is not None
        and not subscription.is_active
        and delivery.event_type != TEST_EVENT
    ):
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookDelivery.Status.FAILED,
            last_error=f"Subscription disabled: {subscription.disabled_reason}"[:500],
        )
        return
    body = delivery_body(delivery)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-MultiMail-Event": delivery.event_type,
        "X-MultiMail-Delivery": delivery.pk,
    }
    signing_secrets = _delivery_secrets(delivery)
    if not signing_secrets:
        # A mailbox-level delivery whose mailbox row is gone: nothing can sign it, and an
        # unsigned event is one a receiver must not trust.
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookDelivery.Status.FAILED, last_error="The mailbox no longer exists."
        )
        return
    headers["X-MultiMail-Signature"] = signature_header(
        signing_secrets=signing_secrets, timestamp=int(time.time()), body=body
    )
    answer: PostAnswer | None = None
    error = detail = ""
    started = time.monotonic()
    try:
        # Vetted again now: the name may resolve elsewhere than when it was registered.
        target = url_vet(delivery.url)
        answer = pinned_post(target, body=body, headers=headers, timeout=TIMEOUT_SECONDS)
        if not 200 <= answer.status < 300:
            error = f"The endpoint answered HTTP {answer.status}."
    except (UnsafeTarget, urllib3.exceptions.HTTPError, OSError) as exc:
        error = network_error_sentence(exc, timeout=TIMEOUT_SECONDS)
        detail = str(exc) if isinstance(exc, UnsafeTarget) else f"{type(exc).__name__}: {exc}"
    delivery_record_attempt(
        delivery_id=delivery.pk,
        attempt=AttemptRecord(
            request_headers=headers,
            answer=answer,
            duration_ms=round((time.monotonic() - started) * 1000),
            error=error,
            error_detail=detail,
        ),
    )


def delivery_body(delivery: WebhookDelivery) -> bytes:
    """The exact bytes POSTed (and signed) for a delivery; the console shows them too."""
    return json.dumps(
        {**delivery.payload, "created_at": delivery.created_at.isoformat()},
        separators=(",", ":"),
    ).encode()


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One attempt as it went: what was sent, what came back (None: no answer), how long."""

    request_headers: dict[str, str]
    answer: PostAnswer | None
    duration_ms: int
    error: str
    error_detail: str = ""


@transaction.atomic
def delivery_record_attempt(*, delivery_id: str, attempt: AttemptRecord) -> None:
    now = timezone.now()
    error = attempt.error
    answer = attempt.answer
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.response_status = answer.status if answer else None
    delivery.response_headers = answer.headers if answer else {}
    delivery.response_body = answer.body_excerpt if answer else ""
    delivery.request_headers = attempt.request_headers
    delivery.duration_ms = attempt.duration_ms
    delivery.last_error = error[:500]
    delivery.error_detail = attempt.error_detail[:500]
    if not error:
        delivery.status = WebhookDelivery.Status.DELIVERED
    elif delivery.attempts >= MAX_ATTEMPTS:
        delivery.status = WebhookDelivery.Status.FAILED
    else:
        delivery.next_attempt_at = now + retry_delay(delivery.attempts)
    delivery.save(
        update_fields=[
            "attempts",
            "last_attempt_at",
            "response_status",
            "response_headers",
            "response_body",
            "request_headers",
            "duration_ms",
            "last_error",
            "error_detail",
            "status",
            "next_attempt_at",
        ]
    )
    if delivery.subscription_id is None or delivery.event_type == TEST_EVENT:
        return
    if not error:
        WebhookSubscription.objects.filter(
            pk=delivery.subscription_id, failing_since__isnull=False
        ).update(failing_since=None)
        return
    WebhookSubscription.objects.filter(
        pk=delivery.subscription_id, failing_since__isnull=True
    ).update(failing_since=now)
    _disable_if_failing_too_long(subscription_id=delivery.subscription_id, now=now, error=error)


def _disable_if_failing_too_long(*, subscription_id: str, now: datetime, error: str) -> None:
    reason = f"Every delivery failed for {DISABLE_AFTER.days} days; last error: {error}"[:200]
    disabled = WebhookSubscription.objects.filter(
        pk=subscription_id, is_active=True, failing_since__lte=now - DISABLE_AFTER
    ).update(is_active=False, disabled_reason=reason)
    if not disabled:
        return
    subscription = WebhookSubscription.objects.select_related("account").get(pk=subscription_id)
    logger.warning("webhook_disabled subscription=%s", subscription_id)
    operator_email_send(
        account=subscription.account,
        subject="A webhook was disabled",
        text=(
            f"MultiMail stopped sending events to {subscription.url} (webhook "
            f"{subscription.pk}): {reason}\n\nFix the endpoint, check it with "
            f"POST /v1/webhooks/{subscription.pk}/test, then delete this webhook and create it "
            "again to resume deliveries."
        ),
    )


@transaction.atomic
def webhook_delivery_replay(*, actor: Actor, delivery_id: str) -> WebhookDelivery:
    """The operator sends a delivery again (console), whatever became of it: a new delivery
    of the same event (same event id, so a receiver can tell it is the same event) to the
    same URL, attempted at once. The original keeps its history."""
    original = (
        WebhookDelivery.objects.select_related("subscription")
        .filter(account=actor.account, pk=delivery_id)
        .first()
    )
    if original is None:
        raise not_found("webhook", "That webhook delivery does not exist in this account.")
    subscription = original.subscription
    if (
        subscription is not None
        and not subscription.is_active
        and original.event_type != TEST_EVENT
    ):
        raise ApiError(
            "conflict",
            "This webhook is disabled, so a replay would not be sent. Send a test event to "
            "check the endpoint, then create the webhook again.",
        )
    replay = WebhookDelivery.objects.create(
        account=actor.account,
        subscription=subscription,
        mailbox_id=original.mailbox_id,
        event_id=original.event_id,
        event_type=original.event_type,
        url=original.url,
        payload=original.payload,
        replay_of=original,
    )
    audit_record(
        actor=actor,
        action="webhook_delivery.replayed",
        resource_type="webhook",
        resource_id=original.subscription_id or original.pk,
        metadata={
            "delivery_id": original.pk,
            "replay_id": replay.pk,
            "event_type": original.event_type,
        },
    )
    enqueue.deliver_webhook_after_commit(replay.pk)
    return replay
