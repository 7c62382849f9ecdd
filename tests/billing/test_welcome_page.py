"""The page Stripe sends the browser to after pricing-checkout."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.billing.conftest import make_event
from tests.billing.test_flows import _pricing_checkout

pytestmark = pytest.mark.django_db


def test_key_is_revealed_by_post_once(
    stripe_fake: Any, deliver: Any, django_capture_on_commit_callbacks: Any
) -> None:
    session_id = _pricing_checkout().json()["session_id"]
    browser = Client()
    landing = browser.get(f"/welcome?session_id={session_id}")
    assert landing.status_code == 200
    assert b"mm_live_" not in landing.content  # a GET (or a link scanner) claims nothing

    pending = browser.post("/welcome", {"session_id": session_id}, follow=True)
    assert b"has not been processed yet" in pending.content

    with django_capture_on_commit_callbacks(execute=True):
        deliver(make_event("checkout.session.completed", stripe_fake.complete_checkout(session_id)))
    # POST/redirect/GET: the key is shown once, on the page the POST redirects to.
    shown = browser.post("/welcome", {"session_id": session_id}, follow=True)
    assert shown.status_code == 200
    assert b"mm_live_" in shown.content
    assert b"Initech Ops is ready" in shown.content

    again = browser.post("/welcome", {"session_id": session_id}, follow=True)
    assert b"mm_live_" not in again.content
    assert b"already picked up" in again.content


def test_cancelled_checkout(db: Any) -> None:
    page = Client().get("/welcome?checkout=cancelled")
    assert page.status_code == 200
    assert b"Nothing was charged" in page.content
