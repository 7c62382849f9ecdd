"""A local fake of the few Stripe endpoints billing calls, and Stripe-signed webhooks.

The fake is a threaded ``http.server`` on 127.0.0.1; the real Stripe SDK is pointed at it
through STRIPE_API_BASE (the client's ``base_addresses``). Like Stripe, it replays the
first answer for a repeated Idempotency-Key.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlparse

import pytest
from rest_framework.test import APIClient

WEBHOOK_SECRET = "whsec_test_secret"
PRICES = {
    (plan, interval): f"price_{plan}_{interval}"
    for plan in ("builder", "pro", "scale")
    for interval in ("monthly", "annual")
}
MONTH = 30 * 24 * 3600


@dataclass
class StripeRequest:
    method: str
    path: str
    params: dict[str, str]
    idempotency_key: str | None
    authorization: str | None


@dataclass
class FakeStripe:
    server: ThreadingHTTPServer
    requests: list[StripeRequest] = field(default_factory=list)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    # HTTP statuses to answer next, in order, before behaving normally.
    failures: list[int] = field(default_factory=list)
    replays: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def calls(self, method: str, prefix: str) -> list[StripeRequest]:
        return [r for r in self.requests if r.method == method and r.path.startswith(prefix)]

    # --- what Stripe does on its side when the customer pays -------------------------

    def complete_checkout(self, session_id: str, *, now: int | None = None) -> dict[str, Any]:
        """The customer paid: Stripe creates the subscription. Returns the session."""
        now = now or int(time.time())
        session = self.sessions[session_id]
        sub_id = f"sub_{next(self.counter)}"
        self.subscriptions[sub_id] = {
            "id": sub_id,
            "object": "subscription",
            "customer": session["customer"],
            "status": "active",
            "cancel_at_period_end": False,
            "metadata": dict(session["metadata"]),
            "items": {
                "object": "list",
                "data": [
                    {
                        "id": f"si_{next(self.counter)}",
                        "object": "subscription_item",
                        "price": {"id": session["price"], "object": "price"},
                        "current_period_start": now,
                        "current_period_end": now + MONTH,
                    }
                ],
            },
        }
        session.update(subscription=sub_id, status="complete", payment_status="paid")
        return session

    # --- the HTTP side ----------------------------------------------------------------

    def handle(self, method: str, path: str, headers: Any, body: str) -> tuple[int, Any]:
        params = dict(parse_qsl(body, keep_blank_values=True))
        key = headers.get("Idempotency-Key")
        with self.lock:
            self.requests.append(
                StripeRequest(method, path, params, key, headers.get("Authorization"))
            )
            if self.failures:
                status = self.failures.pop(0)
                return status, {"error": {"type": "api_error", "message": "fake failure"}}
            if key and key in self.replays:
                return self.replays[key]
            answer = self._route(method, path, params)
            if key and method == "POST":
                self.replays[key] = answer
            return answer

    def _route(self, method: str, path: str, p: dict[str, str]) -> tuple[int, Any]:
        n = next(self.counter)
        if method == "POST" and path == "/v1/customers":
            customer = {"id": f"cus_{n}", "object": "customer", "email": p.get("email")}
            self.customers[customer["id"]] = customer
            return 200, customer
        if method == "POST" and path == "/v1/checkout/sessions":
            session_id = f"cs_test_{n}"
            metadata = {k[9:-1]: v for k, v in p.items() if k.startswith("metadata[")}
            session = {
                "id": session_id,
                "object": "checkout.session",
                "url": f"https://checkout.stripe.test/c/pay/{session_id}",
                "customer": p.get("customer"),
                "mode": p.get("mode"),
                "client_reference_id": p.get("client_reference_id"),
                "metadata": metadata,
                "subscription": None,
                "payment_status": "unpaid",
                "status": "open",
                "price": p.get("line_items[0][price]"),
                "success_url": p.get("success_url"),
            }
            self.sessions[session_id] = session
            return 200, session
        if method == "POST" and path == "/v1/billing_portal/sessions":
            return 200, {
                "id": f"bps_{n}",
                "object": "billing_portal.session",
                "customer": p.get("customer"),
                "url": f"https://billing.stripe.test/p/session/{n}",
                "return_url": p.get("return_url"),
            }
        if path.startswith("/v1/subscriptions/"):
            subscription = self.subscriptions.get(path.rsplit("/", 1)[1])
            if subscription is None:
                return 404, {"error": {"type": "invalid_request_error", "code": "resource_missing"}}
            if method == "POST":
                if "cancel_at_period_end" in p:
                    subscription["cancel_at_period_end"] = p["cancel_at_period_end"] == "true"
                if "items[0][price]" in p:
                    subscription["items"]["data"][0]["price"] = {"id": p["items[0][price]"]}
                for k, v in p.items():
                    if k.startswith("metadata["):
                        subscription["metadata"][k[9:-1]] = v
            return 200, subscription
        return 404, {"error": {"type": "invalid_request_error", "message": f"no route {path}"}}


def _handler_for(fake_ref: list[FakeStripe]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            url = urlparse(self.path)
            status, payload = fake_ref[0].handle(self.command, url.path, self.headers, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Request-Id", "req_fake")
            self.end_headers()
            self.wfile.write(data)

        do_GET = _answer
        do_POST = _answer

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def stripe_fake(settings: Any) -> Iterator[FakeStripe]:
    ref: list[FakeStripe] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(ref))
    fake = FakeStripe(server=server)
    ref.append(fake)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.STRIPE_SECRET_KEY = "sk_test_fake"
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_API_BASE = fake.base_url
    settings.STRIPE_PRICES = dict(PRICES)
    yield fake
    server.shutdown()
    server.server_close()


def sign(payload: str, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """The Stripe-Signature header exactly as Stripe computes it."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


_event_ids = itertools.count(1)


def make_event(event_type: str, obj: dict[str, Any], *, created: int | None = None) -> dict:
    return {
        "id": f"evt_{next(_event_ids)}_{time.time_ns()}",
        "object": "event",
        "type": event_type,
        "created": created if created is not None else int(time.time()),
        "data": {"object": obj},
        "livemode": False,
        "api_version": "2026-01-01",
    }


@pytest.fixture
def deliver() -> Callable[..., Any]:
    """``deliver(event)``: POST a Stripe-signed event to the webhook endpoint."""

    def send(event: dict[str, Any]) -> Any:
        payload = json.dumps(event)
        return APIClient().post(
            "/v1/billing/stripe-webhook",
            data=payload,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=sign(payload),
        )

    return send
