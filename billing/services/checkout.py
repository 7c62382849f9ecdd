"""Paying for a plan from an existing account: Stripe Checkout, changing the plan of a
live subscription, the customer portal and cancellation at the period's end."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction

from accounts.actors import Actor
from accounts.models import Account
from accounts.services import audit_record
from billing.gateway import idempotency_key, price_id, stripe_client, stripe_errors
from billing.models import LIVE_STATUSES, BillingInterval, Subscription
from billing.services.subscriptions import stripe_dict, subscription_apply
from multimail.errors import ApiError


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def public_url(path: str) -> str:
    """Where Stripe sends the customer back when the caller names no URL."""
    return f"{settings.PUBLIC_BASE_URL}{path}"


def _ensure_customer(*, subscription: Subscription) -> str:
    """The account's Stripe customer, created once (our key makes a retried create return
    the same customer)."""
    if subscription.stripe_customer_id:
        return subscription.stripe_customer_id
    account = subscription.account
    with stripe_errors("create the customer"):
        customer = stripe_client().v1.customers.create(
            params={
                "email": account.oversight_email,
                "name": account.name,
                "metadata": {"account_id": account.pk, "slug": account.slug},
            },
            options={"idempotency_key": idempotency_key("customer", account.pk)},
        )
    Subscription.objects.filter(pk=subscription.pk, stripe_customer_id="").update(
        stripe_customer_id=customer.id
    )
    subscription.refresh_from_db(fields=["stripe_customer_id"])
    return subscription.stripe_customer_id


def checkout_session_params(
    *,
    customer: str,
    plan: str,
    interval: str,
    success_url: str,
    cancel_url: str,
    reference: str,
    metadata: dict[str, str],
) -> dict[str, Any]:
    return {
        "mode": "subscription",
        "customer": customer,
        "line_items": [{"price": price_id(plan=plan, interval=interval), "quantity": 1}],
        "success_url": success_url,
        "cancel_url": cancel_url,
        "client_reference_id": reference,
        "metadata": metadata,
        "subscription_data": {"metadata": metadata},
    }


def checkout_start(
    *,
    account: Account,
    plan: str,
    interval: str = BillingInterval.MONTHLY,
    success_url: str | None = None,
    cancel_url: str | None = None,
    request_key: str | None = None,
) -> dict[str, Any]:
    """A Stripe Checkout session for ``plan`` (the console and POST /v1/billing/checkout).

    An account that already pays changes plan in place instead (a second checkout would
    create a second subscription): its subscription item gets the new price, prorated, and
    ``session_id`` is null. ``request_key`` is the client's Idempotency-Key, forwarded.
    """
    price_id(plan=plan, interval=interval)  # configuration first: misconfigured beats all
    client = stripe_client()
    subscription, _ = Subscription.objects.select_related("account").get_or_create(account=account)
    success = success_url or public_url("/console/billing?checkout=success")
    if subscription.status in LIVE_STATUSES and subscription.stripe_subscription_id:
        return _plan_change(
            subscription=subscription,
            plan=plan,
            interval=interval,
            success_url=success,
            request_key=request_key,
        )
    customer = _ensure_customer(subscription=subscription)
    metadata = {"account_id": account.pk, "plan": plan, "interval": interval}
    params = checkout_session_params(
        customer=customer,
        plan=plan,
        interval=interval,
        success_url=success,
        cancel_url=cancel_url or public_url("/console/billing?checkout=cancelled"),
        reference=account.pk,
        metadata=metadata,
    )
    options = (
        {"idempotency_key": idempotency_key("checkout", account.pk, request_key)}
        if request_key
        else {}
    )
    with stripe_errors("create the checkout session"):
        session = client.v1.checkout.sessions.create(params=params, options=options)  # type: ignore[arg-type]
    return {"checkout_url": session.url, "session_id": session.id}


def _plan_change(
    *,
    subscription: Subscription,
    plan: str,
    interval: str,
    success_url: str,
    request_key: str | None,
) -> dict[str, Any]:
    if (
        subscription.plan == plan
        and subscription.interval == interval
        and not subscription.cancel_at_period_end
    ):
        raise ApiError(
            "conflict",
            f"The account is already on the {plan} plan, billed {interval}. Choose another "
            "plan or interval, or manage billing with POST /v1/billing/portal.",
            param="plan",
        )
    client = stripe_client()
    with stripe_errors("read the subscription"):
        current = client.v1.subscriptions.retrieve(subscription.stripe_subscription_id)
    item_id = current["items"]["data"][0]["id"]
    options = (
        {"idempotency_key": idempotency_key("plan", subscription.account_id, request_key)}
        if request_key
        else {}
    )
    with stripe_errors("change the subscription's plan"):
        updated = client.v1.subscriptions.update(
            subscription.stripe_subscription_id,
            params={
                "items": [{"id": item_id, "price": price_id(plan=plan, interval=interval)}],
                "proration_behavior": "create_prorations",
                "cancel_at_period_end": False,
                "metadata": {
                    "account_id": subscription.account_id,
                    "plan": plan,
                    "interval": interval,
                },
            },
            options=options,  # type: ignore[arg-type]
        )
    with transaction.atomic():
        locked = Subscription.objects.select_for_update().get(pk=subscription.pk)
        # Not an event: last_event_created stays, so Stripe's own update event still applies.
        subscription_apply(subscription=locked, obj=stripe_dict(updated), deleted=False)
    return {"checkout_url": success_url, "session_id": None, "plan": locked.plan}


def portal_session_create(*, account: Account, return_url: str | None = None) -> str:
    client = stripe_client()
    subscription = Subscription.objects.filter(account=account).first()
    if subscription is None or not subscription.stripe_customer_id:
        raise ApiError(
            "conflict",
            "This account has no Stripe customer on file yet, so there is no billing to "
            "manage. Subscribe first with POST /v1/billing/checkout.",
        )
    with stripe_errors("open the billing portal"):
        session = client.v1.billing_portal.sessions.create(
            params={
                "customer": subscription.stripe_customer_id,
                "return_url": return_url or public_url("/console/billing"),
            }
        )
    return str(session.url)


def subscription_cancellable(*, account: Account) -> Subscription:
    """The live subscription that can be cancelled, or ``conflict``. Views call it before
    the approval gate, so no operator is asked to approve a cancel that cannot happen."""
    subscription = Subscription.objects.filter(account=account).first()
    if (
        subscription is None
        or subscription.status not in LIVE_STATUSES
        or not subscription.stripe_subscription_id
    ):
        raise ApiError(
            "conflict",
            "This account has no active subscription to cancel (it is on the free Starter "
            "plan). Nothing to do; subscribe with POST /v1/billing/checkout.",
        )
    return subscription


def subscription_cancel(*, actor: Actor, request_id: str = "") -> dict[str, Any]:
    """Cancel at the end of the paid period: the plan stays until then, and Stripe's
    ``customer.subscription.deleted`` at period end moves the account to Starter."""
    subscription = subscription_cancellable(account=actor.account)
    if not subscription.cancel_at_period_end:
        client = stripe_client()
        with stripe_errors("cancel the subscription"):
            updated = client.v1.subscriptions.update(
                subscription.stripe_subscription_id,
                params={"cancel_at_period_end": True},
                options={
                    "idempotency_key": idempotency_key(
                        "cancel", subscription.stripe_subscription_id, str(subscription.updated_at)
                    )
                },
            )
        with transaction.atomic():
            subscription = Subscription.objects.select_for_update().get(pk=subscription.pk)
            subscription_apply(subscription=subscription, obj=stripe_dict(updated), deleted=False)
            audit_record(
                actor=actor,
                action="billing.cancelled",
                resource_type="subscription",
                resource_id=subscription.stripe_subscription_id,
                metadata={
                    "plan": subscription.plan,
                    "access_until": _iso(subscription.current_period_end),
                },
                request_id=request_id,
            )
    return {
        "status": "cancelling",
        "cancel_at_period_end": True,
        "access_until": _iso(subscription.current_period_end),
    }
