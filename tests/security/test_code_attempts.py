"""Every code a person types is attempt-limited, per source address and per target, for
each kind of code, through HTTP: activation, console sign-in, operator-session verify,
mode-upgrade codes and admin-action approval codes.

The budgets are counters in the shared cache (Redis here), the same store every worker
process counts in. Wrong codes are generated; past a budget even the right code is refused
with ``too_many_attempts`` and Retry-After, and the refusal is the budget's, not the code's:
the right code still works from another address while only the first address is spent.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.core.cache import cache
from django.test import Client, TestCase
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from accounts import codes
from accounts.codes import CODE_ALPHABET, AttemptLimit, code_issue, normalize_code
from accounts.models import Account, AccountState, CodePurpose
from mailboxes.models import WebhookSubscription
from tests.conftest import Tenant, client_for, key_for

pytestmark = pytest.mark.django_db

few = settings(
    max_examples=2,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
EMAILED_CODE = re.compile(r"^\s{4}([A-Z0-9]{3}-[A-Z0-9]{3}-[A-Z0-9]{3})$", re.MULTILINE)
TTL = timedelta(hours=1)
_serial = itertools.count()


def _as_typed(raw: str, hyphens: bool, lower: bool) -> str:
    text = normalize_code(raw) if hyphens else raw
    return text.lower() if lower else text


def wrong_codes(count: int) -> st.SearchStrategy[list[str]]:
    # Typed as people type them: with or without hyphens, any case.
    code = st.text(alphabet=CODE_ALPHABET, min_size=9, max_size=9)
    typed = st.builds(_as_typed, code, st.booleans(), st.booleans())
    return st.lists(typed, min_size=count, max_size=count)


@dataclass
class Kind:
    """How to give a person a code of one kind, and how they type it in over HTTP."""

    purpose: CodePurpose
    # (tenant) -> the right code, freshly issued
    issue: Callable[[Tenant], str]
    # (tenant, code, client address) -> "ok" | "wrong" | "limited"
    attempt: Callable[[Tenant, str, str], str]


def _api_outcome(response: Any, ok: int) -> str:
    if response.status_code == ok:
        return "ok"
    error = response.json()["error"]
    if error["code"] == "too_many_attempts":
        assert response.status_code == 429
        assert 0 < int(response["Retry-After"]) <= 3600
        return "limited"
    assert error["code"] == "validation_error", response.content
    return "wrong"


# --- Activation -------------------------------------------------------------------------


def _issue_activation(tenant: Tenant) -> str:
    n = next(_serial)
    account = Account.objects.create(
        name="Pending",
        slug=f"pending{n}",
        oversight_email=f"ops{n}@pending.example",
        state=AccountState.PENDING,
    )
    _, code = code_issue(account=account, purpose=CodePurpose.ACTIVATION, ttl=TTL)
    return code


def _attempt_activation(tenant: Tenant, code: str, ip: str) -> str:
    response = APIClient().post("/v1/confirm", {"code": code}, format="json", REMOTE_ADDR=ip)
    return _api_outcome(response, 200)


# --- Console sign-in and the API's operator session --------------------------------------


def _issue_login(tenant: Tenant) -> str:
    email = tenant.operator.email
    _, code = code_issue(
        account=tenant.account, purpose=CodePurpose.CONSOLE_LOGIN, ttl=TTL, subject=email
    )
    return code


def _attempt_console(tenant: Tenant, code: str, ip: str) -> str:
    response = Client(REMOTE_ADDR=ip).post(
        "/console/login/verify", {"email": tenant.operator.email, "code": code}, follow=True
    )
    page = response.content.decode()
    if "code-too_many_attempts" in page:
        return "limited"
    if "code-validation_error" in page:
        return "wrong"
    assert response.redirect_chain[-1][0] == "/console/", response.redirect_chain
    return "ok"


def _attempt_session(tenant: Tenant, code: str, ip: str) -> str:
    _, raw = key_for(tenant.account, "admin")
    response = client_for(raw).post(
        "/v1/operator/verify-session", {"code": code}, format="json", REMOTE_ADDR=ip
    )
    return _api_outcome(response, 200)


# --- Mode upgrade -----------------------------------------------------------------------


def _issue_upgrade(tenant: Tenant) -> str:
    tenant.mailbox.oversight_mode = "gated_send"
    tenant.mailbox.save(update_fields=["oversight_mode"])
    _, code = code_issue(
        account=tenant.account,
        purpose=CodePurpose.MODE_UPGRADE,
        ttl=TTL,
        subject=f"{tenant.mailbox.pk}:monitored",
    )
    return code


def _attempt_upgrade(tenant: Tenant, code: str, ip: str) -> str:
    _, raw = key_for(tenant.account, "send")
    response = client_for(raw).post(
        f"/v1/mailboxes/{tenant.mailbox.pk}/upgrade", {"code": code}, format="json", REMOTE_ADDR=ip
    )
    return _api_outcome(response, 200)


# --- Admin-action approval --------------------------------------------------------------

WEBHOOK = {"url": "https://hooks.example.com/in", "events": ["message.received"]}


def _issue_approval(tenant: Tenant) -> str:
    WebhookSubscription.objects.filter(account=tenant.account).delete()
    Account.objects.filter(pk=tenant.account.pk).update(require_operator_approval=True)
    tenant.account.refresh_from_db()
    _, raw = key_for(tenant.account, "admin")
    mail.outbox.clear()
    with TestCase.captureOnCommitCallbacks(execute=True):
        asked = client_for(raw).post("/v1/webhooks", WEBHOOK, format="json")
    assert asked.status_code == 202, asked.content
    found = EMAILED_CODE.search(mail.outbox[-1].body)
    assert found
    return found.group(1)


def _attempt_approval(tenant: Tenant, code: str, ip: str) -> str:
    _, raw = key_for(tenant.account, "admin")
    response = client_for(raw).post(
        "/v1/webhooks", {**WEBHOOK, "approval_code": code}, format="json", REMOTE_ADDR=ip
    )
    return _api_outcome(response, 201)


KINDS = {
    "activation": Kind(CodePurpose.ACTIVATION, _issue_activation, _attempt_activation),
    "console_login": Kind(CodePurpose.CONSOLE_LOGIN, _issue_login, _attempt_console),
    "operator_session": Kind(CodePurpose.CONSOLE_LOGIN, _issue_login, _attempt_session),
    "upgrade": Kind(CodePurpose.MODE_UPGRADE, _issue_upgrade, _attempt_upgrade),
    "approval": Kind(CodePurpose.ADMIN_ACTION, _issue_approval, _attempt_approval),
}


def test_every_purpose_is_limited_and_covered_here() -> None:
    assert set(codes.ATTEMPT_LIMITS) == {*CodePurpose.values, codes.SMTP_LOGIN}
    assert {kind.purpose for kind in KINDS.values()} == set(CodePurpose.values)


@pytest.mark.parametrize("name", sorted(KINDS))
@few
@given(wrong=wrong_codes(5))
def test_wrong_codes_from_one_address_spend_its_budget(
    owner: Tenant, name: str, wrong: list[str]
) -> None:
    kind = KINDS[name]
    cache.clear()
    right = kind.issue(owner)
    assert codes.ATTEMPT_LIMITS[kind.purpose].per_source == len(wrong)
    for code in wrong:
        assert kind.attempt(owner, code, "198.51.100.7") == "wrong"
    # Spent: even the right code is not looked at from this address...
    assert kind.attempt(owner, right, "198.51.100.7") == "limited"
    # ...while the person it is for still gets in from theirs.
    assert kind.attempt(owner, right, "203.0.113.9") == "ok"


@pytest.mark.parametrize("name", sorted(KINDS))
@few
@given(wrong=wrong_codes(7))
def test_wrong_codes_from_many_addresses_spend_the_targets_budget(
    owner: Tenant, monkeypatch: pytest.MonkeyPatch, name: str, wrong: list[str]
) -> None:
    kind = KINDS[name]
    cache.clear()
    # A target budget small enough to spend quickly, above one address's budget.
    monkeypatch.setitem(codes.ATTEMPT_LIMITS, kind.purpose, AttemptLimit(5, 7))
    right = kind.issue(owner)
    for index, code in enumerate(wrong):
        assert kind.attempt(owner, code, f"198.51.100.{index // 5 + 1}") == "wrong"
    # Three addresses in, two of them unspent: the target itself is spent.
    assert kind.attempt(owner, right, "198.51.100.2") == "limited"
    assert kind.attempt(owner, right, "203.0.113.9") == "limited"


@pytest.mark.parametrize("name", ["upgrade", "approval"])
def test_right_codes_do_not_spend_the_budget(owner: Tenant, name: str) -> None:
    kind = KINDS[name]
    for _ in range(codes.ATTEMPT_LIMITS[kind.purpose].per_source + 1):
        assert kind.attempt(owner, kind.issue(owner), "198.51.100.7") == "ok"
