"""Concurrent pricing checkouts on PostgreSQL: the guards signup has hold here too.

Each test lets both requests pass the early checks (slug free, address unused) before
either writes its account, which is the interleaving those checks cannot catch alone."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.creation import NewAccount
from accounts.models import Account
from tests.billing.test_flows import PRICING_BODY

pytestmark = pytest.mark.django_db(transaction=True)


def _race(monkeypatch: pytest.MonkeyPatch, bodies: list[dict[str, Any]]) -> list[Any]:
    """POST the bodies to pricing-checkout at once; returns the responses in body order."""
    from billing.services import pricing

    both_checked = threading.Barrier(len(bodies))
    create = pricing.account_create

    def create_after_both_checked(**kwargs: Any) -> NewAccount:
        both_checked.wait(timeout=60)  # a safety net against a hang, not a timing
        return create(**kwargs)

    monkeypatch.setattr(pricing, "account_create", create_after_both_checked)
    responses: list[Any] = [None] * len(bodies)

    def post(index: int) -> Callable[[], None]:
        def run() -> None:
            try:
                responses[index] = APIClient().post(
                    "/v1/billing/pricing-checkout", bodies[index], format="json"
                )
            finally:
                connection.close()

        return run

    threads = [threading.Thread(target=post(index)) for index in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return responses


def test_concurrent_checkouts_for_one_slug_answer_slug_taken(
    stripe_fake: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    responses = _race(
        monkeypatch,
        [
            {**PRICING_BODY, "slug": "race-slug", "oversight_email": "a@race.example"},
            {**PRICING_BODY, "slug": "race-slug", "oversight_email": "b@race.example"},
        ],
    )
    assert sorted(response.status_code for response in responses) == [200, 409]
    lost = next(response for response in responses if response.status_code == 409)
    error = lost.json()["error"]
    assert (error["code"], error["param"]) == ("slug_taken", "slug")
    assert error["suggestions"]
    assert Account.objects.filter(slug="race-slug").count() == 1


def test_concurrent_checkouts_for_one_address_create_one_account(
    stripe_fake: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    responses = _race(
        monkeypatch,
        [
            {**PRICING_BODY, "slug": "race-one", "oversight_email": "same@race.example"},
            {**PRICING_BODY, "slug": "race-two", "oversight_email": "same@race.example"},
        ],
    )
    assert sorted(response.status_code for response in responses) == [200, 409]
    lost = next(response for response in responses if response.status_code == 409)
    error = lost.json()["error"]
    assert (error["code"], error["param"]) == ("conflict", "oversight_email")
    assert Account.objects.filter(oversight_email="same@race.example").count() == 1
