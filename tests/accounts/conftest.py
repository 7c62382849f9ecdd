"""Signup helpers: a cheap proof of work, a solver, and a full signup through HTTP."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail
from rest_framework.test import APIClient


@pytest.fixture(autouse=True)
def _cheap_pow(settings: Any) -> None:
    settings.SIGNUP_POW_MAX_NUMBER = 50


def solve(challenge: dict[str, Any]) -> dict[str, Any]:
    for number in range(challenge["maxnumber"] + 1):
        digest = hashlib.sha256(f"{challenge['salt']}{number}".encode()).hexdigest()
        if digest == challenge["challenge"]:
            return {
                "algorithm": challenge["algorithm"],
                "challenge": challenge["challenge"],
                "number": number,
                "salt": challenge["salt"],
                "signature": challenge["signature"],
            }
    raise AssertionError("unsolvable challenge")


def fresh_pow(client: APIClient) -> dict[str, Any]:
    response = client.post("/v1/account/challenge", {}, format="json")
    assert response.status_code == 200, response.content
    return solve(response.json())


def signup_body(client: APIClient, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "operator_name": "Initech Labs",
        "oversight_email": "boss@initech.example",
        "accepted_tos": True,
        "accepted_operator_agreement": True,
        "accepted_anti_spam_policy": True,
        "email_use_type": "transactional",
        "pow_solution": fresh_pow(client),
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not ...}


CODE_RE = re.compile(r"Activation code: ([A-Z0-9]{3}-[A-Z0-9]{3}-[A-Z0-9]{3})")


def last_code() -> str:
    for message in reversed(mail.outbox):
        found = CODE_RE.search(message.body)
        if found:
            return found.group(1)
    raise AssertionError("no activation code was emailed")


@pytest.fixture
def signed_up(
    db: Any, django_capture_on_commit_callbacks: Any
) -> Callable[..., tuple[APIClient, str]]:
    """``signed_up(**overrides)``: sign up through HTTP; returns (client, activation code)."""

    def run(**overrides: Any) -> tuple[APIClient, str]:
        client = APIClient()
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post("/v1/account", signup_body(client, **overrides), format="json")
        assert response.status_code == 200, response.content
        return client, last_code()

    return run


@pytest.fixture
def time_machine_cache() -> Callable[[], None]:
    """Forget the resend-confirmation marker, as if five minutes had passed."""
    from django.core.cache import cache

    from accounts.signup import _resend_marker

    return lambda: cache.delete(_resend_marker("boss@initech.example"))
