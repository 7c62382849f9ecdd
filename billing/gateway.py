"""The one place that talks to Stripe: client construction, configuration checks, and the
mapping of Stripe failures to catalog errors.

Every POST to Stripe carries an idempotency key (ours when the caller has one, otherwise
the SDK's own, reused across its retries), so the SDK's automatic retries of connection
errors, 409 and 5xx answers are safe.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import stripe
from django.conf import settings

from multimail.errors import ApiError

logger = logging.getLogger("multimail.billing")


def _misconfigured(setting: str) -> ApiError:
    return ApiError(
        "server_misconfigured",
        f"Billing is not configured on this server: {setting} is not set. The operator of "
        "this server must set it; see the Billing section of the README.",
    )


@lru_cache(maxsize=4)
def _client(secret_key: str, api_base: str, retries: int) -> stripe.StripeClient:
    return stripe.StripeClient(
        secret_key,
        base_addresses={"api": api_base} if api_base else None,
        max_network_retries=retries,
    )


def stripe_client() -> stripe.StripeClient:
    if not settings.STRIPE_SECRET_KEY:
        raise _misconfigured("STRIPE_SECRET_KEY")
    # Cached per configuration: the client holds a pooled HTTP session.
    return _client(
        settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE, settings.STRIPE_MAX_NETWORK_RETRIES
    )


def webhook_secret() -> str:
    if not settings.STRIPE_WEBHOOK_SECRET:
        raise _misconfigured("STRIPE_WEBHOOK_SECRET")
    return str(settings.STRIPE_WEBHOOK_SECRET)


def price_id(*, plan: str, interval: str) -> str:
    price = settings.STRIPE_PRICES.get((plan, interval), "")
    if not price:
        raise _misconfigured(f"STRIPE_PRICE_{plan.upper()}_{interval.upper()}")
    return str(price)


def plan_for_price(price: str) -> tuple[str, str] | None:
    """(plan, interval) of a configured price id, or None for a price we do not sell."""
    for (plan, interval), configured in settings.STRIPE_PRICES.items():
        if configured and configured == price:
            return plan, interval
    return None


def idempotency_key(*parts: str) -> str:
    """A Stripe idempotency key derived from ``parts`` (Stripe caps keys at 255 chars)."""
    return "mm-" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


@contextmanager
def stripe_errors(action: str) -> Iterator[None]:
    """Turn Stripe's exceptions into ``upstream_error`` (provider stripe), or
    ``server_misconfigured`` when Stripe refuses our secret key."""
    try:
        yield
    except stripe.AuthenticationError as exc:
        logger.error("stripe_auth_failed action=%s error=%s", action, exc.user_message)
        raise ApiError(
            "server_misconfigured",
            "Stripe refused this server's STRIPE_SECRET_KEY. The operator of this server must "
            "set a valid secret key.",
        ) from exc
    except stripe.StripeError as exc:
        logger.warning(
            "stripe_failed action=%s status=%s code=%s", action, exc.http_status, exc.code
        )
        raise ApiError(
            "upstream_error",
            f"Stripe could not {action} (HTTP {exc.http_status or 'no response'}). Retry "
            "after a short wait.",
            provider="stripe",
        ) from exc
