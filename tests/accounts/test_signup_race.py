"""Two signups for one oversight email at the same moment create one account."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection

from accounts.models import Account
from accounts.signup import account_signup, challenge_create
from tests.accounts.conftest import solve


@pytest.mark.django_db(transaction=True)
def test_concurrent_signups_for_one_email_create_one_account() -> None:
    barrier = threading.Barrier(2)
    outcomes: list[Any] = []

    def sign_up(slug: str) -> None:
        try:
            barrier.wait()
            outcomes.append(
                account_signup(
                    pow_solution=solve(challenge_create()),
                    operator_name=slug,
                    oversight_email="race@example.com",
                    slug=slug,
                )
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=sign_up, args=(slug,)) for slug in ("race-a", "race-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Account.objects.filter(oversight_email="race@example.com").count() == 1
    assert sorted(outcome is None for outcome in outcomes) == [False, True]
