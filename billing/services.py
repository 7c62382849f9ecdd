"""Billing writes: checkout, the customer portal, cancellation, pricing-checkout accounts,
their one-time session key, Stripe webhooks and the unpaid-account sweep.

Stripe is the source of truth for subscriptions; ``Subscription`` mirrors the latest state
it told us, and ``Account.plan``/``Account.period_start`` follow it (``_account_sync``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from stripe import SignatureVerificationError, WebhookSignature

from accounts.actors import Actor
from accounts.models import Account, AccountState, Plan
from accounts.services import (
    api_key_create_audited,
    audit_record,
    operator_create,
    operator_email_send,
)
from accounts.signup import (
    FIRST_KEY_SCOPES,
    default_mailbox_address,
    signup_slug,
    slug_claimable,
)
from billing.gateway import (
    idempotency_key,
    plan_for_price,
    price_id,
    stripe_client,
    stripe_errors,
    webhook_secret,
)
from billing.models import (
    LIVE_STATUSES,
    BillingInterval,
    PendingSessionKey,
    SessionKeyStatus,
    StripeEvent,
    Subscription,
    SubscriptionStatus,
)
from billing.periods import add_months, current_period
from billing.plans import PLANS, limits_for
from mailboxes.models import Mailbox
from multimail.errors import ApiError, not_found

logger = logging.getLogger("multimail.billing")

# Stripe keeps an unfinished checkout session open for 24 hours; its key row lives as long.
CHECKOUT_SESSION_TTL = timedelta(hours=24)
# The spec: the key bought through pricing-checkout can be picked up for one hour.
SESSION_KEY_TTL = timedelta(hours=1)
UNPAID_REASON = "unpaid"

__all__ = [
    "billing_overview",
    "checkout_start",
    "current_period",
    "portal_session_create",
    "pricing_checkout_start",
    "session_key_claim",
    "stripe_event_process",
    "stripe_webhook_receive",
    "subscription_cancel",
    "subscription_cancellable",
    "unpaid_accounts_enforce",
]


def _ts(epoch: int | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, tz=UTC) if epoch else None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


# --- Reads for the console ------------------------------------------------------------


def billing_overview(*, account: Account) -> dict[str, Any]:
    """What the console's billing page shows: the plan, its limits, the subscription."""
    start, end = current_period(account)
    limits = limits_for(account.plan)
    subscription = Subscription.objects.filter(account=account).first()
    return {
        "plan": account.plan,
        "title": limits.title,
        "limits": {
            "max_mailboxes": limits.max_mailboxes,
            "monthly_email_quota": limits.monthly_email_quota,
            "max_storage_bytes": limits.max_storage_bytes,
            "max_webhooks": limits.max_webhooks,
            "max_api_keys": limits.max_api_keys,
            "max_domains": limits.max_domains,
            "custom_domains": limits.custom_domains,
        },
        "period_start": start,
        "period_end": end,
        "interval": subscription.interval if subscription else None,
        "status": subscription.status if subscription else SubscriptionStatus.NONE,
        "cancel_at_period_end": bool(subscription and subscription.cancel_at_period_end),
        "access_until": subscription.current_period_end if subscription else None,
        "past_due_since": subscription.past_due_since if subscription else None,
        "has_customer": bool(subscription and subscription.stripe_customer_id),
        "plans": [
            {
                "plan": limits.plan,
                "title": limits.title,
                "monthly_price_usd": limits.monthly_price_usd,
                "annual_price_usd": limits.annual_price_usd,
            }
            for limits in PLANS.values()
        ],
    }


# --- Checkout, portal, cancel ---------------------------------------------------------


def _default_url(path: str) -> str:
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


def _session_params(
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
    success = success_url or _default_url("/console/billing?checkout=success")
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
    params = _session_params(
        customer=customer,
        plan=plan,
        interval=interval,
        success_url=success,
        cancel_url=cancel_url or _default_url("/console/billing?checkout=cancelled"),
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
        _subscription_apply(subscription=locked, obj=_as_dict(updated), deleted=False)
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
                "return_url": return_url or _default_url("/console/billing"),
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
            _subscription_apply(subscription=subscription, obj=_as_dict(updated), deleted=False)
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


# --- Pricing checkout: account + checkout in one step ---------------------------------


def _fernet() -> Fernet:
    digest = hashlib.sha256(b"multimail.billing.session-key:" + settings.SECRET_KEY.encode())
    return Fernet(base64.urlsafe_b64encode(digest.digest()))


def pricing_checkout_start(
    *,
    operator_name: str,
    oversight_email: str,
    plan: str,
    interval: str,
    oversight_mode: str,
    use_case: str = "",
    slug: str | None = None,
    success_url: str | None = None,
    cancel_url: str | None = None,
    attribution: dict[str, Any] | None = None,
    request_key: str | None = None,
    request_id: str = "",
) -> dict[str, Any]:
    """Create an inactive account (operator + default mailbox) and its checkout session.

    Stripe is called first and the account is written after, in one transaction: a Stripe
    failure leaves nothing behind, and a client retry with the same Idempotency-Key sends
    Stripe identical requests under the same keys, so Stripe returns the same customer
    and session instead of making new ones.
    """
    price_id(plan=plan, interval=interval)
    client = stripe_client()
    clean_slug = signup_slug(slug=slug, operator_name=operator_name)
    email = oversight_email.strip()
    # Derived from the client's key and the body, so two clients that pick the same key for
    # different signups never share a Stripe idempotency key.
    fingerprint = json.dumps([clean_slug, email, plan, interval, success_url, cancel_url])
    customer_key = session_key = None
    if request_key:
        customer_key = idempotency_key("pricing-customer", request_key, fingerprint)
        session_key = idempotency_key("pricing-session", request_key, fingerprint)
    metadata = {"slug": clean_slug, "plan": plan, "interval": interval, "source": "pricing"}
    with stripe_errors("create the customer"):
        customer = client.v1.customers.create(
            params={
                "email": email,
                "name": operator_name.strip(),
                "metadata": {"slug": clean_slug},
            },
            options={"idempotency_key": customer_key} if customer_key else {},
        )
    params = _session_params(
        customer=customer.id,
        plan=plan,
        interval=interval,
        success_url=success_url or _default_url("/welcome?session_id={CHECKOUT_SESSION_ID}"),
        cancel_url=cancel_url or _default_url("/welcome?checkout=cancelled"),
        reference=clean_slug,
        metadata=metadata,
    )
    with stripe_errors("create the checkout session"):
        session = client.v1.checkout.sessions.create(
            params=params,  # type: ignore[arg-type]
            options={"idempotency_key": session_key} if session_key else {},
        )
    _pending_account_create(
        operator_name=operator_name.strip(),
        email=email,
        slug=clean_slug,
        oversight_mode=oversight_mode,
        use_case=use_case,
        interval=interval,
        customer_id=customer.id,
        session_id=session.id,
        attribution=attribution,
        request_id=request_id,
    )
    return {"checkout_url": session.url, "session_id": session.id}


@transaction.atomic
def _pending_account_create(
    *,
    operator_name: str,
    email: str,
    slug: str,
    oversight_mode: str,
    use_case: str,
    interval: str,
    customer_id: str,
    session_id: str,
    attribution: dict[str, Any] | None,
    request_id: str,
) -> Account:
    try:
        with transaction.atomic():
            account = Account.objects.create(
                name=operator_name,
                slug=slug,
                oversight_email=email,
                use_case=use_case,
                default_oversight_mode=oversight_mode,
            )
    except IntegrityError:  # a concurrent signup took the slug between check and insert
        slug_claimable(slug=slug)
        raise
    operator_create(account=account, email=email, name=operator_name)
    mailbox = Mailbox.objects.create(
        account=account, address=default_mailbox_address(slug), oversight_mode=oversight_mode
    )
    Subscription.objects.create(account=account, stripe_customer_id=customer_id, interval=interval)
    PendingSessionKey.objects.create(
        checkout_session_id=session_id,
        account=account,
        mailbox=mailbox,
        expires_at=timezone.now() + CHECKOUT_SESSION_TTL,
    )
    audit_record(
        actor=Actor.system(account, "pricing-checkout"),
        action="account.created",
        resource_type="account",
        resource_id=account.pk,
        metadata={
            "oversight_mode": oversight_mode,
            "checkout_session_id": session_id,
            "attribution": attribution,
        },
        request_id=request_id,
    )
    return account


def session_key_claim(*, session_id: str) -> dict[str, Any]:
    """Hand out the key bought through pricing-checkout, once: the claim is a
    compare-and-set that also wipes the ciphertext, so two concurrent reads get it once."""
    row = (
        PendingSessionKey.objects.select_related("account", "mailbox")
        .filter(checkout_session_id=session_id, expires_at__gt=timezone.now())
        .first()
    )
    if row is None or row.status == SessionKeyStatus.CLAIMED:
        raise not_found(
            "billing_session",
            "No key is waiting for this session_id: it was already picked up, expired after "
            "1 hour, or never existed. Sign in to the console to create a new API key.",
        )
    if row.status == SessionKeyStatus.PAYMENT_PENDING:
        raise ApiError(
            "payment_pending",
            "The payment for this checkout session has not been processed yet. Retry in a "
            "few seconds.",
            headers={"Retry-After": "2"},
        )
    claimed = PendingSessionKey.objects.filter(pk=row.pk, status=SessionKeyStatus.READY).update(
        status=SessionKeyStatus.CLAIMED, key_ciphertext=""
    )
    if not claimed:
        raise not_found("billing_session", "The key for this session was already picked up.")
    account = row.account
    return {
        "api_key": _fernet().decrypt(row.key_ciphertext.encode()).decode(),
        "mailbox_id": row.mailbox.pk if row.mailbox else None,
        "mailbox_address": row.mailbox.address if row.mailbox else None,
        "oversight_mode": (
            row.mailbox.oversight_mode if row.mailbox else account.default_oversight_mode
        ),
        "org_name": account.name,
        "oversight_email": account.oversight_email,
    }


# --- Stripe webhooks ------------------------------------------------------------------


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
    try:
        event = json.loads(payload)
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


def _as_dict(obj: Any) -> dict[str, Any]:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _id_of(value: Any) -> str:
    """Stripe fields hold an id or, when expanded, the object."""
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


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


def _subscription_plan(obj: dict[str, Any]) -> tuple[str | None, str | None]:
    items = (obj.get("items") or {}).get("data") or []
    price = (items[0].get("price") or {}) if items else {}
    known = plan_for_price(_id_of(price))
    if known:
        return known
    metadata = obj.get("metadata") or {}
    plan, interval = metadata.get("plan"), metadata.get("interval")
    if plan in PLANS and plan != Plan.STARTER:
        return plan, interval if interval in BillingInterval.values else None
    return None, None


def _subscription_apply(*, subscription: Subscription, obj: dict[str, Any], deleted: bool) -> None:
    """Mirror a Stripe subscription object (from an event or an API answer)."""
    status = SubscriptionStatus.CANCELED if deleted else obj.get("status", subscription.status)
    if status not in SubscriptionStatus.values:
        status = SubscriptionStatus.INCOMPLETE
    plan, interval = _subscription_plan(obj)
    subscription.stripe_subscription_id = str(obj.get("id") or subscription.stripe_subscription_id)
    subscription.stripe_customer_id = _id_of(obj.get("customer")) or subscription.stripe_customer_id
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
    subscription.current_period_start = _ts(start) or subscription.current_period_start
    subscription.current_period_end = _ts(end) or subscription.current_period_end
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
    _account_sync(subscription=subscription)


def _account_sync(*, subscription: Subscription) -> None:
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
    account.subscription = subscription  # type: ignore[attr-defined]
    current_period(account)


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
        account_id=account_id, customer_id=_id_of(session.get("customer"))
    )
    if subscription is None:
        return None, "unknown_account"
    if session.get("payment_status") not in ("paid", "no_payment_required"):
        return subscription.account_id, "awaiting_payment"
    new_id = _id_of(session.get("subscription"))
    if new_id and new_id != subscription.stripe_subscription_id:
        # A new subscription: the ordering watermark belongs to the previous one.
        subscription.stripe_subscription_id = new_id
        subscription.last_event_created = 0
        subscription.current_period_start = subscription.current_period_end = None
    subscription.stripe_customer_id = (
        _id_of(session.get("customer")) or subscription.stripe_customer_id
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
        started = _ts(int(event["created"])) or timezone.now()
        subscription.current_period_start = started
        subscription.current_period_end = add_months(
            started, 12 if subscription.interval == BillingInterval.ANNUAL else 1
        )
    subscription.updated_at = timezone.now()
    subscription.save()
    _account_sync(subscription=subscription)
    if pending is not None and pending.status == SessionKeyStatus.PAYMENT_PENDING:
        _pricing_account_activate(pending=pending)
    return subscription.account_id, "applied"


def _pricing_account_activate(*, pending: PendingSessionKey) -> None:
    """The payment went through: activate the account and prepare its one-time key."""
    now = timezone.now()
    activated = Account.objects.filter(pk=pending.account_id, state=AccountState.PENDING).update(
        state=AccountState.ACTIVE, activated_at=now
    )
    account = Account.objects.get(pk=pending.account_id)
    actor = Actor.system(account, "stripe checkout")
    _, raw = api_key_create_audited(actor=actor, name="First key", scopes=list(FIRST_KEY_SCOPES))
    pending.status = SessionKeyStatus.READY
    pending.key_ciphertext = _fernet().encrypt(raw.encode()).decode()
    pending.expires_at = now + SESSION_KEY_TTL
    pending.save(update_fields=["status", "key_ciphertext", "expires_at"])
    if activated:
        audit_record(
            actor=actor, action="account.activated", resource_type="account", resource_id=account.pk
        )
        operator_email_send(
            account=account,
            subject="Your MultiMail account is active",
            text=(
                f"Thank you: the payment for {account.name} went through and the account is "
                f"active on the {limits_for(account.plan).title} plan.\n\n"
                "The agent's first API key is shown once on the page the checkout returned to "
                "(it can be picked up for one hour). You oversee this account: sign in to the "
                f"console at {settings.PUBLIC_BASE_URL}/console/ with this address."
            ),
        )


def _on_subscription_event(event: dict[str, Any]) -> tuple[str | None, str]:
    obj = event["data"]["object"]
    created = int(event["created"])
    deleted = event["type"] == "customer.subscription.deleted"
    subscription = _locked_subscription(
        subscription_id=str(obj.get("id") or ""),
        customer_id=_id_of(obj.get("customer")),
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
    _subscription_apply(subscription=subscription, obj=obj, deleted=deleted)
    return subscription.account_id, "applied"


def _invoice_subscription(obj: dict[str, Any]) -> str:
    # Newer API versions move the subscription under parent.subscription_details.
    parent = ((obj.get("parent") or {}).get("subscription_details") or {}).get("subscription")
    return _id_of(obj.get("subscription")) or _id_of(parent)


def _payment_event_subscription(event: dict[str, Any]) -> Subscription | tuple[str | None, str]:
    """The locked subscription an invoice event is about; or, when there is nothing to
    apply, the outcome: unknown customer, or older than the newest payment event applied."""
    obj = event["data"]["object"]
    subscription = _locked_subscription(
        subscription_id=_invoice_subscription(obj), customer_id=_id_of(obj.get("customer"))
    )
    if subscription is None:
        return None, "unknown_account"
    if int(event["created"]) < subscription.last_payment_event_created:
        return subscription.account_id, "stale"
    return subscription


def _https_url(value: Any) -> str:
    # Only a plain https link goes into an email; anything else is dropped.
    return value if isinstance(value, str) and value.startswith("https://") else ""


def _pay_here(subscription: Subscription | None) -> str:
    if subscription is None or not subscription.unpaid_invoice_url:
        return ""
    return f"\n\nPay the invoice here, no sign-in needed: {subscription.unpaid_invoice_url}"


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
        subscription.past_due_since = _ts(created)
    if subscription.status == SubscriptionStatus.ACTIVE:
        subscription.status = SubscriptionStatus.PAST_DUE
    subscription.updated_at = timezone.now()
    subscription.save()
    if first_failure:
        deadline = subscription.past_due_since + timedelta(  # type: ignore[operator]
            days=settings.BILLING_UNPAID_GRACE_DAYS
        )
        operator_email_send(
            account=subscription.account,
            subject="Payment failed",
            text=(
                "The last payment for your MultiMail subscription failed. Update the payment "
                "method in the billing portal (console, Billing) before "
                f"{deadline:%Y-%m-%d %H:%M} UTC, or the account will be deactivated until "
                "the invoice is paid." + _pay_here(subscription)
            ),
        )
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
    _account_sync(subscription=subscription)
    reactivated = Account.objects.filter(
        pk=subscription.account_id, state=AccountState.DEACTIVATED, deactivated_reason=UNPAID_REASON
    ).update(state=AccountState.ACTIVE, deactivated_reason="")
    if reactivated:
        account = Account.objects.get(pk=subscription.account_id)
        audit_record(
            actor=Actor.system(account, "stripe"),
            action="account.reactivated",
            resource_type="account",
            resource_id=account.pk,
            metadata={"reason": "invoice paid"},
        )
        operator_email_send(
            account=account,
            subject="Account reactivated",
            text="The invoice was paid and your MultiMail account is active again.",
        )
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


# --- The unpaid sweep (beat, hourly) --------------------------------------------------


def unpaid_accounts_enforce(*, now: datetime | None = None) -> int:
    """Deactivate accounts whose invoice stayed unpaid past the grace period, delete
    pricing-checkout accounts whose checkout expired unpaid (freeing their slugs), and drop
    session keys nobody picked up. Returns how many accounts were deactivated."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.BILLING_UNPAID_GRACE_DAYS)
    account_ids = list(
        Subscription.objects.filter(
            past_due_since__lte=cutoff, account__state=AccountState.ACTIVE
        ).values_list("account_id", flat=True)
    )
    deactivated = sum(account_deactivate_unpaid(account_id=pk) for pk in account_ids)
    expired = PendingSessionKey.objects.filter(expires_at__lte=now)
    abandoned = list(
        expired.filter(status=SessionKeyStatus.PAYMENT_PENDING).values_list("account_id", flat=True)
    )
    Account.objects.filter(pk__in=abandoned, state=AccountState.PENDING).delete()
    expired.delete()
    return deactivated


@transaction.atomic
def account_deactivate_unpaid(*, account_id: str) -> bool:
    changed = Account.objects.filter(pk=account_id, state=AccountState.ACTIVE).update(
        state=AccountState.DEACTIVATED, deactivated_reason=UNPAID_REASON
    )
    if not changed:
        return False
    account = Account.objects.get(pk=account_id)
    audit_record(
        actor=Actor.system(account, "billing"),
        action="account.deactivated",
        resource_type="account",
        resource_id=account.pk,
        metadata={"reason": UNPAID_REASON},
    )
    operator_email_send(
        account=account,
        subject="Account deactivated: unpaid invoice",
        text=(
            f"The MultiMail subscription's invoice stayed unpaid for more than "
            f"{settings.BILLING_UNPAID_GRACE_DAYS} days, so the account is deactivated: its "
            "API keys are refused and its operators cannot sign in. Once the invoice is paid "
            "the account is reactivated automatically."
            + (
                _pay_here(Subscription.objects.filter(account=account).first())
                or " Contact support to pay it."
            )
        ),
    )
    return True
