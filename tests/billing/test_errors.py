"""Every error code the billing endpoints raise, through HTTP, with the whole envelope."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import Account
from billing.models import Subscription
from tests.billing.conftest import make_event, sign
from tests.billing.test_flows import PRICING_BODY
from tests.conftest import assert_error, client_for, key_for, make_tenant

pytestmark = pytest.mark.django_db


def _admin(owner: Any) -> APIClient:
    return client_for(key_for(owner.account, "admin")[1])


def _webhook(payload: str, signature: str | None) -> Any:
    extra = {"HTTP_STRIPE_SIGNATURE": signature} if signature is not None else {}
    return APIClient().post(
        "/v1/billing/stripe-webhook", data=payload, content_type="application/json", **extra
    )


def test_webhook_signature_missing(stripe_fake: Any) -> None:
    payload = json.dumps(make_event("invoice.paid", {"id": "in_1"}))
    assert_error(_webhook(payload, None), "webhook_signature_missing")


@pytest.mark.parametrize(
    "header",
    [
        "t=1,v1=deadbeef",  # wrong signature
        "garbage",  # no timestamp
        "t=123",  # no v1 signature
    ],
)
def test_webhook_signature_invalid(stripe_fake: Any, header: str) -> None:
    payload = json.dumps(make_event("invoice.paid", {"id": "in_1"}))
    assert_error(_webhook(payload, header), "webhook_signature_invalid")


def test_webhook_body_that_is_not_utf8_is_refused_not_a_500(stripe_fake: Any) -> None:
    response = APIClient().post(
        "/v1/billing/stripe-webhook",
        data=b"2\xef",
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE="t=1,v1=deadbeef",
    )
    assert_error(response, "webhook_signature_invalid")


def test_webhook_signed_with_another_secret_or_too_old(stripe_fake: Any) -> None:
    payload = json.dumps(make_event("invoice.paid", {"id": "in_1"}))
    assert_error(
        _webhook(payload, sign(payload, secret="whsec_other")), "webhook_signature_invalid"
    )
    old = sign(payload, timestamp=int(time.time()) - 3600)
    assert_error(_webhook(payload, old), "webhook_signature_invalid")
    # A body changed after signing no longer verifies.
    tampered = payload.replace("invoice.paid", "invoice.payment_failed")
    assert_error(_webhook(tampered, sign(payload)), "webhook_signature_invalid")


def test_webhook_signed_body_that_is_not_an_event(stripe_fake: Any) -> None:
    payload = json.dumps({"hello": "world"})
    assert_error(_webhook(payload, sign(payload)), "invalid_parameter", param="body")


def test_webhook_without_secret_is_server_misconfigured(stripe_fake: Any, settings: Any) -> None:
    settings.STRIPE_WEBHOOK_SECRET = ""
    payload = json.dumps(make_event("invoice.paid", {"id": "in_1"}))
    assert_error(_webhook(payload, sign(payload)), "server_misconfigured")


def test_checkout_without_stripe_key_is_server_misconfigured(owner: Any, settings: Any) -> None:
    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_PRICES = {("pro", "monthly"): "price_pro_monthly"}
    response = _admin(owner).post("/v1/billing/checkout", {"plan": "pro"}, format="json")
    error = assert_error(response, "server_misconfigured")
    assert "STRIPE_SECRET_KEY" in error["message"]


def test_checkout_without_price_is_server_misconfigured(
    owner: Any, stripe_fake: Any, settings: Any
) -> None:
    settings.STRIPE_PRICES = {}
    response = _admin(owner).post("/v1/billing/checkout", {"plan": "pro"}, format="json")
    error = assert_error(response, "server_misconfigured")
    assert "STRIPE_PRICE_PRO_MONTHLY" in error["message"]


def test_stripe_rejecting_the_key_is_server_misconfigured(owner: Any, stripe_fake: Any) -> None:
    stripe_fake.failures = [401]
    response = _admin(owner).post("/v1/billing/checkout", {"plan": "pro"}, format="json")
    assert_error(response, "server_misconfigured")


def test_stripe_failure_is_upstream_error_after_retries(owner: Any, stripe_fake: Any) -> None:
    stripe_fake.failures = [500, 503, 500]
    response = _admin(owner).post("/v1/billing/checkout", {"plan": "pro"}, format="json")
    assert_error(response, "upstream_error", provider="stripe")
    calls = stripe_fake.calls("POST", "/v1/customers")
    assert len(calls) == 3
    assert len({call.idempotency_key for call in calls}) == 1


def test_stripe_transient_failure_is_retried_transparently(owner: Any, stripe_fake: Any) -> None:
    stripe_fake.failures = [500]
    response = _admin(owner).post("/v1/billing/checkout", {"plan": "pro"}, format="json")
    assert response.status_code == 200, response.content
    assert Subscription.objects.get(account=owner.account).stripe_customer_id.startswith("cus_")


def test_checkout_parameters(owner: Any, stripe_fake: Any) -> None:
    client = _admin(owner)
    assert_error(
        client.post("/v1/billing/checkout", {}, format="json"), "missing_parameter", param="plan"
    )
    for bad in ({"plan": "starter"}, {"plan": "gold"}):
        assert_error(
            client.post("/v1/billing/checkout", bad, format="json"),
            "invalid_parameter",
            param="plan",
        )
    bad_interval = client.post(
        "/v1/billing/checkout", {"plan": "pro", "interval": "weekly"}, format="json"
    )
    assert_error(bad_interval, "invalid_parameter", param="interval")
    bad_url = client.post(
        "/v1/billing/checkout", {"plan": "pro", "success_url": "nope"}, format="json"
    )
    assert_error(bad_url, "invalid_parameter", param="success_url")


def test_billing_needs_admin_scope(owner: Any, stripe_fake: Any) -> None:
    reader = client_for(key_for(owner.account, "read")[1])
    for path in ("/v1/billing/checkout", "/v1/billing/portal", "/v1/billing/cancel"):
        response = reader.post(path, {"plan": "pro"}, format="json")
        assert_error(response, "insufficient_permissions", required_scope="admin")
    assert_error(
        APIClient().post("/v1/billing/portal", {}, format="json"), "authentication_required"
    )


def test_portal_without_customer_is_conflict(owner: Any, stripe_fake: Any) -> None:
    error = assert_error(_admin(owner).post("/v1/billing/portal", {}, format="json"), "conflict")
    assert "Stripe customer" in error["message"]


def test_cancel_without_subscription_is_conflict(owner: Any, stripe_fake: Any) -> None:
    error = assert_error(_admin(owner).post("/v1/billing/cancel", {}, format="json"), "conflict")
    assert "no active subscription" in error["message"]


def test_cancel_with_wrong_approval_code(owner: Any, stripe_fake: Any) -> None:
    from accounts.models import Account

    Subscription.objects.create(
        account=owner.account, stripe_subscription_id="sub_x", plan="pro", status="active"
    )
    Account.objects.filter(pk=owner.account.pk).update(require_operator_approval=True)
    response = _admin(owner).post(
        "/v1/billing/cancel", {"approval_code": "AAA-AAA-AAA"}, format="json"
    )
    assert_error(response, "validation_error", param="approval_code")


def test_pricing_checkout_validation(stripe_fake: Any) -> None:
    client = APIClient()
    refused = client.post(
        "/v1/billing/pricing-checkout", {**PRICING_BODY, "accepted_tos": False}, format="json"
    )
    assert_error(refused, "validation_error", param="accepted_tos")
    missing = {k: v for k, v in PRICING_BODY.items() if k != "oversight_email"}
    assert_error(
        client.post("/v1/billing/pricing-checkout", missing, format="json"),
        "missing_parameter",
        param="oversight_email",
    )
    unsafe = client.post(
        "/v1/billing/pricing-checkout",
        {**PRICING_BODY, "oversight_mode": "autonomous"},
        format="json",
    )
    assert_error(unsafe, "invalid_parameter", param="oversight_mode")
    bad_email = client.post(
        "/v1/billing/pricing-checkout", {**PRICING_BODY, "oversight_email": "nope"}, format="json"
    )
    assert_error(bad_email, "invalid_parameter", param="oversight_email")
    assert stripe_fake.requests == []


def test_pricing_checkout_slug_taken_and_reserved(stripe_fake: Any) -> None:
    make_tenant("initech-ops")
    taken = APIClient().post("/v1/billing/pricing-checkout", PRICING_BODY, format="json")
    error = assert_error(taken, "slug_taken", param="slug")
    assert error["suggestions"]
    reserved = APIClient().post(
        "/v1/billing/pricing-checkout", {**PRICING_BODY, "slug": "admin"}, format="json"
    )
    assert_error(reserved, "slug_reserved", param="slug")
    assert stripe_fake.requests == []


def test_pricing_checkout_refuses_a_second_account_for_the_oversight_email(
    stripe_fake: Any,
) -> None:
    """Signup's rule on the pricing path: one oversight email, one account. The refusal
    comes before Stripe is called, so it costs no Stripe customer."""
    make_tenant("initech-labs")  # oversees ops@initech-labs.example
    response = APIClient().post(
        "/v1/billing/pricing-checkout",
        {**PRICING_BODY, "oversight_email": "OPS@initech-labs.example"},
        format="json",
    )
    error = assert_error(response, "conflict", param="oversight_email")
    assert "already exists" in error["message"]
    assert stripe_fake.requests == []
    assert Account.objects.filter(oversight_email__iexact="ops@initech-labs.example").count() == 1


def test_pricing_checkout_rate_limited(stripe_fake: Any, settings: Any) -> None:
    from billing import views

    client = APIClient()
    for index in range(views.PRICING_CHECKOUTS_PER_HOUR):
        body = {
            **PRICING_BODY,
            "slug": f"initech-{index}",
            "oversight_email": f"ops-{index}@initech.example",  # one account per address
        }
        assert client.post("/v1/billing/pricing-checkout", body, format="json").status_code == 200
    over = client.post(
        "/v1/billing/pricing-checkout", {**PRICING_BODY, "slug": "initech-x"}, format="json"
    )
    assert_error(over, "rate_limit_exceeded", limit_type="pricing_checkout")


def test_session_key_errors(stripe_fake: Any) -> None:
    client = APIClient()
    assert_error(client.get("/v1/billing/session-key"), "missing_parameter", param="session_id")
    unknown = client.get("/v1/billing/session-key", {"session_id": "cs_unknown"})
    assert_error(unknown, "not_found", resource="billing_session")


def test_idempotency_key_reused_with_another_body(stripe_fake: Any) -> None:
    client = APIClient()
    first = client.post(
        "/v1/billing/pricing-checkout", PRICING_BODY, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert first.status_code == 200
    other = {**PRICING_BODY, "slug": "another-one"}
    reused = client.post(
        "/v1/billing/pricing-checkout", other, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert_error(reused, "idempotency_conflict", param="Idempotency-Key")
