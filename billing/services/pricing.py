"""The public pricing checkout: a new, inactive account and its Stripe Checkout session
in one step, the account's activation when the payment goes through, and the one-time
pickup of the API key it bought."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta
from typing import Any

from cryptography.fernet import Fernet
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.actors import Actor
from accounts.creation import (
    FIRST_KEY_SCOPES,
    OversightEmailInUse,
    account_create,
    oversight_email_holder,
)
from accounts.models import Account, AccountState
from accounts.plans import limits_for
from accounts.principals import principal_versions_bump
from accounts.services import api_key_create_audited, audit_record, operator_email_send
from accounts.slugs import signup_slug
from billing.gateway import idempotency_key, price_id, stripe_client, stripe_errors
from billing.models import PendingSessionKey, SessionKeyStatus, Subscription
from billing.services.checkout import checkout_session_params, public_url
from multimail.errors import ApiError, not_found

# Stripe keeps an unfinished checkout session open for 24 hours; its key row lives as long.
CHECKOUT_SESSION_TTL = timedelta(hours=24)
# The spec: the key bought through pricing-checkout can be picked up for one hour.
SESSION_KEY_TTL = timedelta(hours=1)


def _fernet() -> Fernet:
    digest = hashlib.sha256(b"multimail.billing.session-key:" + settings.SECRET_KEY.encode())
    return Fernet(base64.urlsafe_b64encode(digest.digest()))


def _email_in_use() -> ApiError:
    # Unlike signup, this answer cannot look the same either way: a checkout URL for an
    # account that is never created would take a payment for nothing.
    return ApiError(
        "conflict",
        "An account for this oversight email already exists, so no second one was created "
        "and nothing was charged. Sign in to the console with this address to change its "
        "plan (Billing), or use another oversight email.",
        param="oversight_email",
    )


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
    and session instead of making new ones. Like signup, one oversight email gets one
    account: checked here so a refused request costs no Stripe customer, and again under
    the email lock when the account is written, for concurrent requests.
    """
    price_id(plan=plan, interval=interval)
    client = stripe_client()
    clean_slug = signup_slug(slug=slug, operator_name=operator_name)
    email = oversight_email.strip()
    if oversight_email_holder(email) is not None:
        raise _email_in_use()
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
    params = checkout_session_params(
        customer=customer.id,
        plan=plan,
        interval=interval,
        success_url=success_url or public_url("/welcome?session_id={CHECKOUT_SESSION_ID}"),
        cancel_url=cancel_url or public_url("/welcome?checkout=cancelled"),
        reference=clean_slug,
        metadata=metadata,
    )
    with stripe_errors("create the checkout session"):
        session = client.v1.checkout.sessions.create(
            params=params,  # type: ignore[arg-type]
            options={"idempotency_key": session_key} if session_key else {},
        )
    _pending_account_create(
        operator_name=operator_name,
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
        created = account_create(
            name=operator_name,
            oversight_email=email,
            slug=slug,
            created_by="pricing-checkout",
            oversight_mode=oversight_mode,
            use_case=use_case,
            audit_metadata={
                "oversight_mode": oversight_mode,
                "checkout_session_id": session_id,
                "attribution": attribution,
            },
            request_id=request_id,
        )
    except OversightEmailInUse:  # a concurrent checkout for the address got there first
        raise _email_in_use() from None
    Subscription.objects.create(
        account=created.account, stripe_customer_id=customer_id, interval=interval
    )
    PendingSessionKey.objects.create(
        checkout_session_id=session_id,
        account=created.account,
        mailbox=created.mailbox,
        expires_at=timezone.now() + CHECKOUT_SESSION_TTL,
    )
    return created.account


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


def pricing_account_activate(*, pending: PendingSessionKey) -> None:
    """The payment went through: activate the account and prepare its one-time key."""
    now = timezone.now()
    activated = Account.objects.filter(pk=pending.account_id, state=AccountState.PENDING).update(
        state=AccountState.ACTIVE, activated_at=now
    )
    if activated:
        principal_versions_bump([pending.account_id])
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
