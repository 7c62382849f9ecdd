"""End to end against the fake Stripe: pricing checkout, payment, the one-time key, plan
changes, cancellation, unpaid deactivation and reactivation, webhook ordering."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.actors import Actor
from accounts.models import Account, AccountState, AdminActionRequest, ApiKey, Operator
from billing.models import PendingSessionKey, StripeEvent, Subscription, SubscriptionStatus
from billing.services.enforcement import unpaid_accounts_enforce
from mailboxes.models import Mailbox
from oversight.admin_actions import admin_action_approve
from tests.billing.conftest import MONTH, make_event
from tests.conftest import assert_error, client_for, key_for, make_tenant

pytestmark = pytest.mark.django_db

PRICING_BODY = {
    "operator_name": "Initech Ops",
    "oversight_email": "ops@initech.example",
    "plan": "builder",
    "accepted_tos": True,
    "accepted_operator_agreement": True,
    "accepted_anti_spam_policy": True,
    "oversight_mode": "gated_all",
}


def _pricing_checkout(key: str = "signup-1", **overrides: Any) -> Any:
    return APIClient().post(
        "/v1/billing/pricing-checkout",
        {**PRICING_BODY, **overrides},
        format="json",
        HTTP_IDEMPOTENCY_KEY=key,
    )


def _session_key(session_id: str) -> Any:
    return APIClient().get("/v1/billing/session-key", {"session_id": session_id})


def test_pricing_checkout_pay_and_pick_up_the_key_once(
    stripe_fake: Any, deliver: Any, django_capture_on_commit_callbacks: Any
) -> None:
    response = _pricing_checkout()
    assert response.status_code == 200, response.content
    body = response.json()
    session_id = body["session_id"]
    assert body["checkout_url"] == f"https://checkout.stripe.test/c/pay/{session_id}"
    account = Account.objects.get(slug="initech-ops")
    assert account.state == AccountState.PENDING
    assert account.plan == "starter"
    assert Operator.objects.filter(account=account, email="ops@initech.example").exists()
    mailbox = Mailbox.objects.get(account=account)
    assert mailbox.oversight_mode == "gated_all"
    session = stripe_fake.sessions[session_id]
    assert session["price"] == "price_builder_monthly"
    assert session["metadata"]["slug"] == "initech-ops"

    # The client's Idempotency-Key reached Stripe (derived, one per call).
    customer_call, session_call = stripe_fake.requests
    assert customer_call.idempotency_key
    assert customer_call.idempotency_key.startswith("mm-")
    assert session_call.idempotency_key
    assert session_call.idempotency_key.startswith("mm-")
    assert customer_call.authorization == "Bearer sk_test_fake"

    # A retried request is answered from the replay store: no second account or session.
    again = _pricing_checkout()
    assert again.json() == body
    assert again["Idempotent-Replayed"] == "true"
    assert Account.objects.filter(slug="initech-ops").count() == 1
    assert len(stripe_fake.requests) == 2

    # Before the payment is processed.
    assert_error(_session_key(session_id), "payment_pending")

    paid = stripe_fake.complete_checkout(session_id)
    with django_capture_on_commit_callbacks(execute=True):
        delivered = deliver(make_event("checkout.session.completed", paid))
    assert delivered.status_code == 200, delivered.content
    assert delivered.json() == {"received": True, "outcome": "applied"}
    account.refresh_from_db()
    assert account.state == AccountState.ACTIVE
    assert account.plan == "builder"
    subscription = Subscription.objects.get(account=account)
    assert subscription.stripe_subscription_id == paid["subscription"]
    assert subscription.status == SubscriptionStatus.ACTIVE
    pending = PendingSessionKey.objects.get(pk=session_id)
    assert pending.key_ciphertext
    assert "mm_live_" not in pending.key_ciphertext
    assert pending.expires_at <= timezone.now() + timedelta(hours=1)

    picked = _session_key(session_id)
    assert picked.status_code == 200, picked.content
    data = picked.json()
    assert data["api_key"].startswith("mm_live_")
    assert data["mailbox_id"] == mailbox.pk
    assert data["mailbox_address"] == mailbox.address
    assert data["oversight_mode"] == "gated_all"
    assert data["org_name"] == "Initech Ops"
    assert data["oversight_email"] == "ops@initech.example"
    assert PendingSessionKey.objects.get(pk=session_id).key_ciphertext == ""

    welcome = [m for m in mail.outbox if "is active" in m.subject]
    assert len(welcome) == 1
    assert welcome[0].to == ["ops@initech.example"]
    assert data["api_key"] not in welcome[0].body  # the key is never emailed

    # The key works, and only once is it handed out.
    usage = client_for(data["api_key"]).get("/v1/usage")
    assert usage.status_code == 200, usage.content
    assert_error(_session_key(session_id), "not_found", resource="billing_session")


def test_pricing_checkout_retry_after_stripe_failure_reuses_stripe_keys(stripe_fake: Any) -> None:
    stripe_fake.failures = [500, 500, 500]  # the first attempt and both SDK retries
    failed = _pricing_checkout(key="signup-retry")
    assert_error(failed, "upstream_error", provider="stripe")
    assert not Account.objects.filter(slug="initech-ops").exists()
    attempts = stripe_fake.calls("POST", "/v1/customers")
    assert len(attempts) == 3
    assert len({a.idempotency_key for a in attempts}) == 1  # the SDK retried under one key

    retried = _pricing_checkout(key="signup-retry")
    assert retried.status_code == 200, retried.content
    assert stripe_fake.calls("POST", "/v1/customers")[-1].idempotency_key == (
        attempts[0].idempotency_key
    )
    assert Account.objects.filter(slug="initech-ops").count() == 1


def test_session_key_expires_after_an_hour(stripe_fake: Any, deliver: Any) -> None:
    session_id = _pricing_checkout().json()["session_id"]
    deliver(make_event("checkout.session.completed", stripe_fake.complete_checkout(session_id)))
    PendingSessionKey.objects.filter(pk=session_id).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert_error(_session_key(session_id), "not_found", resource="billing_session")
    unpaid_accounts_enforce()
    assert not PendingSessionKey.objects.filter(pk=session_id).exists()


def test_abandoned_pricing_checkout_frees_the_slug(stripe_fake: Any) -> None:
    session_id = _pricing_checkout().json()["session_id"]
    PendingSessionKey.objects.filter(pk=session_id).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    unpaid_accounts_enforce()
    assert not Account.objects.filter(slug="initech-ops").exists()
    assert _pricing_checkout(key="signup-2").status_code == 200


def _subscribe(owner: Any, stripe_fake: Any, deliver: Any, plan: str = "pro") -> dict[str, Any]:
    _, raw = key_for(owner.account, "admin")
    response = client_for(raw).post("/v1/billing/checkout", {"plan": plan}, format="json")
    assert response.status_code == 200, response.content
    paid = stripe_fake.complete_checkout(response.json()["session_id"])
    assert deliver(make_event("checkout.session.completed", paid)).status_code == 200
    return stripe_fake.subscriptions[paid["subscription"]]


def test_checkout_activates_the_plan_and_syncs_the_period(
    owner: Any, stripe_fake: Any, deliver: Any
) -> None:
    _, raw = key_for(owner.account, "admin")
    response = client_for(raw).post(
        "/v1/billing/checkout",
        {"plan": "pro", "interval": "annual", "success_url": "https://app.example/ok"},
        format="json",
    )
    assert response.status_code == 200, response.content
    session = stripe_fake.sessions[response.json()["session_id"]]
    assert session["price"] == "price_pro_annual"
    assert session["metadata"] == {
        "account_id": owner.account.pk,
        "plan": "pro",
        "interval": "annual",
    }
    assert session["success_url"] == "https://app.example/ok"
    [customer_call] = stripe_fake.calls("POST", "/v1/customers")
    assert customer_call.params["metadata[account_id]"] == owner.account.pk

    paid = stripe_fake.complete_checkout(session["id"])
    deliver(make_event("checkout.session.completed", paid))
    stripe_sub = stripe_fake.subscriptions[paid["subscription"]]
    item = stripe_sub["items"]["data"][0]
    deliver(make_event("customer.subscription.created", stripe_sub))
    owner.account.refresh_from_db()
    assert owner.account.plan == "pro"
    assert int(owner.account.period_start.timestamp()) == item["current_period_start"]
    subscription = Subscription.objects.get(account=owner.account)
    assert subscription.interval == "annual"
    assert int(subscription.current_period_end.timestamp()) == item["current_period_end"]


def test_upgrade_changes_the_plan_in_place(owner: Any, stripe_fake: Any, deliver: Any) -> None:
    stripe_sub = _subscribe(owner, stripe_fake, deliver, plan="builder")
    _, raw = key_for(owner.account, "admin")
    response = client_for(raw).post("/v1/billing/checkout", {"plan": "scale"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["session_id"] is None
    assert response.json()["plan"] == "scale"
    [update] = stripe_fake.calls("POST", f"/v1/subscriptions/{stripe_sub['id']}")
    assert update.params["items[0][price]"] == "price_scale_monthly"
    assert update.params["items[0][id]"] == stripe_sub["items"]["data"][0]["id"]
    owner.account.refresh_from_db()
    assert owner.account.plan == "scale"
    # Stripe's own event for the change agrees and is applied.
    assert deliver(make_event("customer.subscription.updated", stripe_sub)).json()["outcome"] == (
        "applied"
    )
    owner.account.refresh_from_db()
    assert owner.account.plan == "scale"
    # The same plan again is a conflict, not a second charge.
    same = client_for(raw).post("/v1/billing/checkout", {"plan": "scale"}, format="json")
    assert_error(same, "conflict", param="plan")


def test_cancel_keeps_the_plan_until_period_end_then_starter(
    owner: Any, stripe_fake: Any, deliver: Any
) -> None:
    stripe_sub = _subscribe(owner, stripe_fake, deliver)
    deliver(make_event("customer.subscription.created", stripe_sub))
    _, raw = key_for(owner.account, "admin")
    response = client_for(raw).post("/v1/billing/cancel", {}, format="json")
    assert response.status_code == 200, response.content
    end = stripe_sub["items"]["data"][0]["current_period_end"]
    assert response.json() == {
        "status": "cancelling",
        "cancel_at_period_end": True,
        "access_until": timezone.datetime.fromtimestamp(end, tz=timezone.UTC)
        .isoformat()
        .replace("+00:00", "Z"),
    }
    [update] = stripe_fake.calls("POST", f"/v1/subscriptions/{stripe_sub['id']}")
    assert update.params == {"cancel_at_period_end": "true"}
    owner.account.refresh_from_db()
    assert owner.account.plan == "pro"  # access until the period ends
    # Cancelling again answers the same without calling Stripe again.
    again = client_for(raw).post("/v1/billing/cancel", {}, format="json")
    assert again.json()["status"] == "cancelling"
    assert len(stripe_fake.calls("POST", "/v1/subscriptions/")) == 1

    ended = {**stripe_sub, "status": "canceled"}
    outcome = deliver(
        make_event("customer.subscription.deleted", ended, created=int(time.time()) + 5)
    )
    assert outcome.json()["outcome"] == "applied"
    owner.account.refresh_from_db()
    assert owner.account.plan == "starter"
    assert Subscription.objects.get(account=owner.account).status == SubscriptionStatus.CANCELED
    assert_error(client_for(raw).post("/v1/billing/cancel", {}, format="json"), "conflict")


def test_cancel_with_an_agent_key_needs_the_operator(
    owner: Any, stripe_fake: Any, deliver: Any
) -> None:
    _subscribe(owner, stripe_fake, deliver)
    Account.objects.filter(pk=owner.account.pk).update(require_operator_approval=True)
    _, raw = key_for(owner.account, "admin")
    pending = client_for(raw).post("/v1/billing/cancel", {}, format="json")
    assert pending.status_code == 202, pending.content
    assert pending.json()["status"] == "pending_approval"
    assert not stripe_fake.calls("POST", "/v1/subscriptions/")
    request = AdminActionRequest.objects.get(action="billing.cancel")
    owner.account.refresh_from_db()
    approved = admin_action_approve(
        actor=Actor.for_operator(owner.operator), approval_id=request.pk
    )
    assert approved.result["status"] == "cancelling"
    assert Subscription.objects.get(account=owner.account).cancel_at_period_end is True


def test_portal_returns_the_stripe_url(owner: Any, stripe_fake: Any, deliver: Any) -> None:
    _subscribe(owner, stripe_fake, deliver)
    _, raw = key_for(owner.account, "admin")
    response = client_for(raw).post(
        "/v1/billing/portal", {"return_url": "https://app.example/back"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["portal_url"].startswith("https://billing.stripe.test/p/session/")
    [call] = stripe_fake.calls("POST", "/v1/billing_portal/sessions")
    assert call.params["return_url"] == "https://app.example/back"


def test_unpaid_past_grace_deactivates_and_payment_reactivates(
    owner: Any, stripe_fake: Any, deliver: Any, django_capture_on_commit_callbacks: Any
) -> None:
    stripe_sub = _subscribe(owner, stripe_fake, deliver)
    _, raw = key_for(owner.account, "read")
    pay_url = "https://invoice.stripe.test/i/in_1"
    invoice = {"id": "in_1", "object": "invoice", "customer": stripe_sub["customer"],
               "subscription": stripe_sub["id"], "hosted_invoice_url": pay_url}  # fmt: skip
    failed_at = int(time.time())
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        deliver(make_event("invoice.payment_failed", invoice, created=failed_at))
    subscription = Subscription.objects.get(account=owner.account)
    assert subscription.status == SubscriptionStatus.PAST_DUE
    assert subscription.past_due_since is not None
    [failed] = [m for m in mail.outbox if m.subject.endswith("Payment failed")]
    assert pay_url in failed.body

    assert unpaid_accounts_enforce() == 0  # within the grace period
    assert client_for(raw).get("/v1/usage").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        assert unpaid_accounts_enforce(now=timezone.now() + timedelta(days=8)) == 1
    owner.account.refresh_from_db()
    assert owner.account.state == AccountState.DEACTIVATED
    assert owner.account.deactivated_reason == "unpaid"
    assert_error(client_for(raw).get("/v1/usage"), "account_deactivated", reason="unpaid")
    # Its operators cannot sign in any more: the notice carries the link to pay.
    [notice] = [m for m in mail.outbox if "deactivated" in m.subject]
    assert pay_url in notice.body

    deliver(make_event("invoice.paid", invoice, created=failed_at + 10))
    owner.account.refresh_from_db()
    assert owner.account.state == AccountState.ACTIVE
    subscription = Subscription.objects.get(account=owner.account)
    assert subscription.past_due_since is None
    assert subscription.unpaid_invoice_url == ""
    assert client_for(raw).get("/v1/usage").status_code == 200


def test_a_payment_link_that_is_not_https_is_never_emailed(
    owner: Any, stripe_fake: Any, deliver: Any, django_capture_on_commit_callbacks: Any
) -> None:
    stripe_sub = _subscribe(owner, stripe_fake, deliver)
    invoice = {
        "id": "in_8",
        "customer": stripe_sub["customer"],
        "subscription": stripe_sub["id"],
        "hosted_invoice_url": "javascript:alert(1)",
    }
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        deliver(make_event("invoice.payment_failed", invoice))
        unpaid_accounts_enforce(now=timezone.now() + timedelta(days=8))
    assert Subscription.objects.get(account=owner.account).unpaid_invoice_url == ""
    [notice] = [m for m in mail.outbox if "deactivated" in m.subject]
    assert "javascript" not in notice.body
    assert "Contact support to pay it." in notice.body


def test_duplicate_event_is_processed_once(owner: Any, stripe_fake: Any, deliver: Any) -> None:
    stripe_sub = _subscribe(owner, stripe_fake, deliver)
    invoice = {"id": "in_2", "customer": stripe_sub["customer"], "subscription": stripe_sub["id"]}
    event = make_event("invoice.payment_failed", invoice)
    first = deliver(event)
    assert first.json() == {"received": True, "outcome": "applied"}
    since = Subscription.objects.get(account=owner.account).past_due_since
    second = deliver(event)
    assert second.status_code == 200
    assert second.json() == {"received": True, "duplicate": True}
    assert StripeEvent.objects.filter(pk=event["id"]).count() == 1
    assert Subscription.objects.get(account=owner.account).past_due_since == since


def test_out_of_order_events_keep_the_newest_state(
    owner: Any, stripe_fake: Any, deliver: Any
) -> None:
    stripe_sub = _subscribe(owner, stripe_fake, deliver, plan="builder")
    now = int(time.time())
    scale = {**stripe_sub, "items": {"data": [{**stripe_sub["items"]["data"][0],
             "price": {"id": "price_scale_monthly"}}]}}  # fmt: skip
    builder = {**stripe_sub, "items": {"data": [{**stripe_sub["items"]["data"][0],
               "price": {"id": "price_builder_monthly"}}]}}  # fmt: skip
    assert (
        deliver(make_event("customer.subscription.updated", scale, created=now + 20)).json()[
            "outcome"
        ]
        == "applied"
    )
    late = deliver(make_event("customer.subscription.updated", builder, created=now + 10))
    assert late.json()["outcome"] == "stale"
    owner.account.refresh_from_db()
    assert owner.account.plan == "scale"

    invoice = {"id": "in_3", "customer": stripe_sub["customer"], "subscription": stripe_sub["id"]}
    deliver(make_event("invoice.paid", invoice, created=now + 30))
    stale = deliver(make_event("invoice.payment_failed", invoice, created=now + 25))
    assert stale.json()["outcome"] == "stale"
    assert Subscription.objects.get(account=owner.account).past_due_since is None

    # A subscription event older than the checkout's (created before payment) is ignored
    # once a newer one applied; the deletion at period end still wins later.
    gone = deliver(make_event("customer.subscription.deleted", {**scale, "status": "canceled"},
                              created=now + MONTH))  # fmt: skip
    assert gone.json()["outcome"] == "applied"
    owner.account.refresh_from_db()
    assert owner.account.plan == "starter"


def test_event_for_an_unknown_customer_is_acknowledged(stripe_fake: Any, deliver: Any) -> None:
    obj = {"id": "sub_nobody", "customer": "cus_nobody", "status": "active"}
    response = deliver(make_event("customer.subscription.updated", obj))
    assert response.status_code == 200
    assert response.json()["outcome"] == "unknown_account"
    assert deliver(make_event("charge.refunded", {"id": "ch_1"})).json()["outcome"] == "unhandled"


def test_session_key_api_key_has_first_key_scopes(stripe_fake: Any, deliver: Any) -> None:
    session_id = _pricing_checkout().json()["session_id"]
    deliver(make_event("checkout.session.completed", stripe_fake.complete_checkout(session_id)))
    raw = _session_key(session_id).json()["api_key"]
    key = ApiKey.objects.get(prefix=raw[:16])
    assert key.scopes == ["read", "send", "admin"]


def test_payment_failure_after_the_subscription_ended_is_ignored(
    owner: Any, stripe_fake: Any, deliver: Any
) -> None:
    stripe_sub = _subscribe(owner, stripe_fake, deliver)
    now = int(time.time())
    ended = {**stripe_sub, "status": "canceled"}
    deliver(make_event("customer.subscription.deleted", ended, created=now + 5))
    invoice = {"id": "in_9", "customer": stripe_sub["customer"], "subscription": stripe_sub["id"]}
    late = deliver(make_event("invoice.payment_failed", invoice, created=now + 10))
    assert late.json()["outcome"] == "ignored_inactive"
    assert Subscription.objects.get(account=owner.account).past_due_since is None
    assert unpaid_accounts_enforce(now=timezone.now() + timedelta(days=30)) == 0


def test_pricing_checkout_keeps_clean_attribution(stripe_fake: Any) -> None:
    from accounts.models import AuditEntry

    attribution = {"first": {"ts": 1, "landing_path": "/pricing"}, "visits": 2, "version": 1}
    assert _pricing_checkout(attribution=attribution).status_code == 200
    entry = AuditEntry.objects.get(action="account.created")
    assert entry.metadata["attribution"] == attribution
    # A bad shape is dropped, never a reason to refuse.
    response = _pricing_checkout(
        key="k-bad",
        slug="initech-two",
        oversight_email="two@initech.example",
        attribution={"nope": 1},
    )
    assert response.status_code == 200
    assert AuditEntry.objects.filter(action="account.created").count() == 2


def test_checkout_forwards_the_idempotency_key(owner: Any, stripe_fake: Any) -> None:
    _, raw = key_for(owner.account, "admin")
    client = client_for(raw)
    first = client.post(
        "/v1/billing/checkout", {"plan": "pro"}, format="json", HTTP_IDEMPOTENCY_KEY="up-1"
    )
    assert first.status_code == 200, first.content
    [session_call] = stripe_fake.calls("POST", "/v1/checkout/sessions")
    assert session_call.idempotency_key
    assert session_call.idempotency_key.startswith("mm-")
    # Another account using the same client key gets its own Stripe key.
    other_account = make_tenant("hooli").account
    _, other_raw = key_for(other_account, "admin")
    client_for(other_raw).post(
        "/v1/billing/checkout", {"plan": "pro"}, format="json", HTTP_IDEMPOTENCY_KEY="up-1"
    )
    keys = {call.idempotency_key for call in stripe_fake.calls("POST", "/v1/checkout/sessions")}
    assert len(keys) == 2
