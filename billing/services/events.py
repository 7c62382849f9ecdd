"""Stripe webhooks: the signature check, then each event applied exactly once."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from stripe import SignatureVerificationError, WebhookSignature

from accounts.models import Account
from accounts.plans import PLANS, Plan
from billing.gateway import webhook_secret
from billing.models import (
    LIVE_STATUSES,
    BillingInterval,
    PendingSessionKey,
    SessionKeyStatus,
    StripeEvent,
    Subscription,
    SubscriptionStatus,
)
from billing.periods import add_months
from billing.services.enforcement import account_reactivate_paid, payment_failure_notify
from billing.services.pricing import pricing_account_activate
from billing.services.subscriptions import (
    account_plan_sync,
    stripe_id,
    stripe_time,
    subscription_apply,
)
from multimail.errors import ApiError
from multimail.json_limits import json_loads_bounded

logger = logging.getLogger("multimail.billing")


def stripe_webhook_receive(*, payload: bytes, signature: str | None) -> dict[str, Any]:
    """Verify the Stripe-Signature header exactly as Stripe's SDK does, then process."""
    secret = webhook_secret()
    if not signature:
        raise ApiError(
            "webhook_signature_missing",
            "The Stripe-Signature header is missing. Send Stripe webhooks from an endpoint "
            "with signing configured.",
        )
    try:
        WebhookSignature.verify_header(
            payload, signature, secret, settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS
        )
    except SignatureVerificationError as exc:
        raise ApiError(
            "webhook_signature_invalid",
            f"The Stripe signature does not verify ({exc.user_message}). Check that "
            "STRIPE_WEBHOOK_SECRET is this endpoint's signing secret.",
        ) from exc
    except UnicodeDecodeError as exc:  # the SDK decodes the body before it checks anything
        raise ApiError(
            "webhook_signature_invalid",
            "The body is not UTF-8, so it is not what Stripe signed.",
        ) from exc
    try:
        event = json_loads_bounded(payload)
        event_id = str(event["id"])
        str(event["type"])
        int(event["created"])
        obj = event["data"]["object"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ApiError(
            "invalid_parameter",
            "The webhook body is not a Stripe event (id, type, created, data.object).",
            param="body",
        ) from exc
    if not isinstance(obj, dict) or not event_id:
        raise ApiError("invalid_parameter", "data.object must be an object.", param="body")
    return stripe_event_process(event=event)


@transaction.atomic
def stripe_event_process(*, event: dict[str, Any]) -> dict[str, Any]:
    """Apply one Stripe event exactly once. The event row and the changes it causes commit
    together: a failure rolls both back and Stripe's redelivery processes it again."""
    try:
        with transaction.atomic():
            record = StripeEvent.objects.create(
                id=event["id"], type=event["type"], created=int(event["created"])
            )
    except IntegrityError:
        return {"received": True, "duplicate": True}
    handler = _HANDLERS.get(record.type)
    account_id, outcome = handler(event) if handler else (None, "unhandled")
    record.account_id = account_id
    record.outcome = outcome
    record.save(update_fields=["account", "outcome"])
    logger.info("stripe_event id=%s type=%s outcome=%s", record.id, record.type, outcome)
    return {"received": True, "outcome": outcome}


def _locked_subscription(
    *, subscription_id: str = "", customer_id: str = "", account_id: str = ""
) -> Subscription | None:
    base = Subscription.objects.select_for_update()
    for field, value in (
        ("stripe_subscription_id", subscription_id),
        ("stripe_customer_id", customer_id),
        ("account_id", account_id),
    ):
        if value:
            found = base.filter(**{field: value}).first()
            if found is not None:
                return found
    if account_id and Account.objects.filter(pk=account_id).exists():
        subscription, _ = Subscription.objects.get_or_create(account_id=account_id)
        return base.get(pk=subscription.pk)
    return None


def _on_checkout_completed(event: dict[str, Any]) -> tuple[str | None, str]:
    session = event["data"]["object"]
    if session.get("mode") != "subscription":
        return None, "ignored_mode"
    pending = (
        PendingSessionKey.objects.select_for_update().filter(pk=str(session.get("id"))).first()
    )
    metadata = session.get("metadata") or {}
    account_id = metadata.get("account_id") or (pending.account_id if pending else "")
    subscription = _locked_subscription(
        account_id=account_id, customer_id=stripe_id(session.get("customer"))
    )
    if subscription is None:
        return None, "unknown_account"
    if session.get("payment_status") not in ("paid", "no_payment_required"):
        return subscription.account_id, "awaiting_payment"
    new_id = stripe_id(session.get("subscription"))
    if new_id and new_id != subscription.stripe_subscription_id:
        # A new subscription: the ordering watermark belongs to the previous one.
        subscription.stripe_subscription_id = new_id
        subscription.last_event_created = 0
        subscription.current_period_start = subscription.current_period_end = None
    subscription.stripe_customer_id = (
        stripe_id(session.get("customer")) or subscription.stripe_customer_id
    )
    # A customer.subscription.* event for this subscription (more precise: it carries the
    # price and the period) may have arrived first; then it wins.
    if subscription.last_event_created == 0:
        plan, interval = metadata.get("plan"), metadata.get("interval")
        if plan in PLANS and plan != Plan.STARTER:
            subscription.plan = plan
        if interval in BillingInterval.values:
            subscription.interval = interval
        subscription.status = SubscriptionStatus.ACTIVE
        subscription.cancel_at_period_end = False
        started = stripe_time(int(event["created"])) or timezone.now()
        subscription.current_period_start = started
        subscription.current_period_end = add_months(
            started, 12 if subscription.interval == BillingInterval.ANNUAL else 1
        )
    subscription.updated_at = timezone.now()
    subscription.save()
    account_plan_sync(subscription=subscription)
    if pending is not None and pending.status == SessionKeyStatus.PAYMENT_PENDING:
        pricing_account_activate(pending=pending)
    return subscription.account_id, "applied"


def _on_subscription_event(event: dict[str, Any]) -> tuple[str | None, str]:
    obj = event["data"]["object"]
    created = int(event["created"])
    deleted = event["type"] == "customer.subscription.deleted"
    subscription = _locked_subscription(
        subscription_id=str(obj.get("id") or ""),
        customer_id=stripe_id(obj.get("customer")),
        account_id=(obj.get("metadata") or {}).get("account_id", ""),
    )
    if subscription is None:
        return None, "unknown_account"
    if subscription.stripe_subscription_id and subscription.stripe_subscription_id != obj.get("id"):
        if deleted or obj.get("status") not in LIVE_STATUSES:
            return subscription.account_id, "other_subscription"  # an old one ending
        subscription.last_event_created = 0  # a new subscription replaces the old one
    if created < subscription.last_event_created:
        return subscription.account_id, "stale"
    subscription.last_event_created = created
    subscription_apply(subscription=subscription, obj=obj, deleted=deleted)
    return subscription.account_id, "applied"


def _invoice_subscription(obj: dict[str, Any]) -> str:
    # Newer API versions move the subscription under parent.subscription_details.
    parent = ((obj.get("parent") or {}).get("subscription_details") or {}).get("subscription")
    return stripe_id(obj.get("subscription")) or stripe_id(parent)


def _payment_event_subscription(event: dict[str, Any]) -> Subscription | tuple[str | None, str]:
    """The locked subscription an invoice event is about; or, when there is nothing to
    apply, the outcome: unknown customer, or older than the newest payment event applied."""
    obj = event["data"]["object"]
    subscription = _locked_subscription(
        subscription_id=_invoice_subscription(obj), customer_id=stripe_id(obj.get("customer"))
    )
    if subscription is None:
        return None, "unknown_account"
    if int(event["created"]) < subscription.last_payment_event_created:
        return subscription.account_id, "stale"
    return subscription


def _https_url(value: Any) -> str:
    # Only a plain https link goes into an email; anything else is dropped.
    return value if isinstance(value, str) and value.startswith("https://") else ""


def _on_payment_failed(event: dict[str, Any]) -> tuple[str | None, str]:
    created = int(event["created"])
    subscription = _payment_event_subscription(event)
    if not isinstance(subscription, Subscription):
        return subscription
    if subscription.status not in (*LIVE_STATUSES, SubscriptionStatus.UNPAID):
        # The subscription already ended (the account is on Starter): nothing to enforce.
        return subscription.account_id, "ignored_inactive"
    subscription.last_payment_event_created = created
    subscription.unpaid_invoice_url = _https_url(event["data"]["object"].get("hosted_invoice_url"))
    first_failure = subscription.past_due_since is None
    if first_failure:
        subscription.past_due_since = stripe_time(created)
    if subscription.status == SubscriptionStatus.ACTIVE:
        subscription.status = SubscriptionStatus.PAST_DUE
    subscription.updated_at = timezone.now()
    subscription.save()
    if first_failure:
        payment_failure_notify(subscription=subscription)
    return subscription.account_id, "applied"


def _on_invoice_paid(event: dict[str, Any]) -> tuple[str | None, str]:
    created = int(event["created"])
    subscription = _payment_event_subscription(event)
    if not isinstance(subscription, Subscription):
        return subscription
    subscription.last_payment_event_created = created
    subscription.past_due_since = None
    subscription.unpaid_invoice_url = ""
    if subscription.status in (SubscriptionStatus.PAST_DUE, SubscriptionStatus.UNPAID):
        subscription.status = SubscriptionStatus.ACTIVE
    subscription.updated_at = timezone.now()
    subscription.save()
    account_plan_sync(subscription=subscription)
    account_reactivate_paid(account_id=subscription.account_id)
    return subscription.account_id, "applied"


_HANDLERS = {
    "checkout.session.completed": _on_checkout_completed,
    "checkout.session.async_payment_succeeded": _on_checkout_completed,
    "customer.subscription.created": _on_subscription_event,
    "customer.subscription.updated": _on_subscription_event,
    "customer.subscription.deleted": _on_subscription_event,
    "invoice.payment_failed": _on_payment_failed,
    "invoice.paid": _on_invoice_paid,
    "invoice.payment_succeeded": _on_invoice_paid,
}
