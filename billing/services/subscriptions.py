"""The mirror of Stripe's subscription state: ``Subscription`` follows what Stripe last
told us (an event or an API answer), and ``Account.plan`` follows the subscription."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.utils import timezone

from accounts.actors import Actor
from accounts.models import Account
from accounts.plans import PLANS, Plan
from accounts.principals import principal_versions_bump
from accounts.services import audit_record
from billing.gateway import plan_for_price
from billing.models import LIVE_STATUSES, BillingInterval, Subscription, SubscriptionStatus
from billing.periods import current_period


def stripe_time(epoch: int | None) -> datetime | None:
    """A Stripe timestamp (epoch seconds) as an aware datetime; None when Stripe sent none."""
    return datetime.fromtimestamp(epoch, tz=UTC) if epoch else None


def stripe_dict(obj: Any) -> dict[str, Any]:
    """An SDK answer as the plain dict an event carries, so both are mirrored alike."""
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def stripe_id(value: Any) -> str:
    """Stripe fields hold an id or, when expanded, the object."""
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def _subscription_plan(obj: dict[str, Any]) -> tuple[str | None, str | None]:
    items = (obj.get("items") or {}).get("data") or []
    price = (items[0].get("price") or {}) if items else {}
    known = plan_for_price(stripe_id(price))
    if known:
        return known
    metadata = obj.get("metadata") or {}
    plan, interval = metadata.get("plan"), metadata.get("interval")
    if plan in PLANS and plan != Plan.STARTER:
        return plan, interval if interval in BillingInterval.values else None
    return None, None


def subscription_apply(*, subscription: Subscription, obj: dict[str, Any], deleted: bool) -> None:
    """Mirror a Stripe subscription object (from an event or an API answer)."""
    status = SubscriptionStatus.CANCELED if deleted else obj.get("status", subscription.status)
    if status not in SubscriptionStatus.values:
        status = SubscriptionStatus.INCOMPLETE
    plan, interval = _subscription_plan(obj)
    subscription.stripe_subscription_id = str(obj.get("id") or subscription.stripe_subscription_id)
    subscription.stripe_customer_id = (
        stripe_id(obj.get("customer")) or subscription.stripe_customer_id
    )
    subscription.status = status
    if plan:
        subscription.plan = plan
    if interval:
        subscription.interval = interval
    items = (obj.get("items") or {}).get("data") or []
    # Newer API versions put the period on the subscription item.
    item = items[0] if items else {}
    start = obj.get("current_period_start") or item.get("current_period_start")
    end = obj.get("current_period_end") or item.get("current_period_end")
    subscription.current_period_start = stripe_time(start) or subscription.current_period_start
    subscription.current_period_end = stripe_time(end) or subscription.current_period_end
    subscription.cancel_at_period_end = bool(obj.get("cancel_at_period_end")) and not deleted
    # Paid again, or over: a subscription Stripe ended for non-payment drops the account to
    # Starter rather than leaving it to the unpaid sweep.
    if status in (
        SubscriptionStatus.ACTIVE,
        SubscriptionStatus.CANCELED,
        SubscriptionStatus.INCOMPLETE_EXPIRED,
    ):
        subscription.past_due_since = None
    subscription.updated_at = timezone.now()
    subscription.save()
    account_plan_sync(subscription=subscription)


def account_plan_sync(*, subscription: Subscription) -> None:
    """Account.plan follows the subscription while it is in force; otherwise Starter.
    period_start is the paid period's start, or the Starter window from account creation."""
    in_force = subscription.status in (*LIVE_STATUSES, SubscriptionStatus.UNPAID)
    plan = subscription.plan if in_force and subscription.plan != Plan.STARTER else Plan.STARTER
    account = Account.objects.select_for_update().get(pk=subscription.account_id)
    if account.plan != plan:
        audit_record(
            actor=Actor.system(account, "stripe"),
            action="billing.plan_changed",
            resource_type="account",
            resource_id=account.pk,
            metadata={"from": account.plan, "to": plan},
        )
    account.plan = plan
    account.save(update_fields=["plan"])
    principal_versions_bump([account.pk])
    account.subscription = subscription  # type: ignore[attr-defined]
    current_period(account)
