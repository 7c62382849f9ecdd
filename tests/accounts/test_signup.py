"""POST /v1/account/challenge, POST /v1/account, GET /v1/slug-check/{slug}."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs

import pytest
from django.core import mail
from rest_framework.test import APIClient

from accounts.models import Account, AccountState, AuditEntry, Operator
from accounts.slugs import RESERVED_SLUGS
from mailboxes.models import Mailbox
from tests.accounts.conftest import fresh_pow, signup_body, solve
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def client() -> APIClient:
    return APIClient()


def test_challenge_has_the_altcha_shape(client: APIClient, settings: Any) -> None:
    body = client.post("/v1/account/challenge", {}, format="json").json()
    assert body["algorithm"] == "SHA-256"
    assert body["maxnumber"] == settings.SIGNUP_POW_MAX_NUMBER
    assert "?expires=" in body["salt"]
    expires = int(parse_qs(body["salt"].partition("?")[2])["expires"][0])
    assert 0 < expires - time.time() <= 300
    assert len(body["signature"]) == 64
    solve(body)  # solvable within maxnumber


def test_challenge_rejects_a_malformed_email(client: APIClient) -> None:
    response = client.post("/v1/account/challenge", {"oversight_email": "nope"}, format="json")
    assert_error(response, "invalid_parameter", param="oversight_email")


def test_challenges_are_rate_limited_per_address(client: APIClient) -> None:
    for _ in range(30):
        assert client.post("/v1/account/challenge", {}, format="json").status_code == 200
    response = client.post("/v1/account/challenge", {}, format="json")
    assert_error(response, "rate_limit_exceeded", limit_type="signup")


def test_signup_creates_a_pending_account_with_operator_and_mailbox(
    client: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/v1/account",
            signup_body(client, use_case="Support agent", physical_address="1 Main St"),
            format="json",
        )
    assert response.status_code == 200
    assert response.json()["status"] == "confirmation_sent"
    account = Account.objects.get(slug="initech-labs")
    assert account.state == AccountState.PENDING
    assert account.use_case == "Support agent"
    assert account.default_oversight_mode == "gated_send"
    operator = Operator.objects.get(account=account)
    assert operator.email == "boss@initech.example"
    assert not operator.user.has_usable_password()
    mailbox = Mailbox.objects.get(account=account)
    assert mailbox.address == "initech-labs@initech-labs.multimail.localhost"
    assert mailbox.oversight_mode == "gated_send"
    assert AuditEntry.objects.filter(account=account, action="account.created").exists()
    (message,) = mail.outbox
    assert message.to == ["boss@initech.example"]
    assert "Activation code: " in message.body
    assert "/v1/confirm/" in message.body


def test_signup_honours_slug_and_oversight_mode(signed_up: Any) -> None:
    signed_up(slug="Skunkworks", oversight_mode="monitored")
    account = Account.objects.get(slug="skunkworks")
    assert account.mailboxes.get().oversight_mode == "monitored"


def test_existing_oversight_email_gets_the_same_answer_and_no_new_account(
    signed_up: Any, client: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    signed_up()
    with django_capture_on_commit_callbacks(execute=True):
        again = client.post(
            "/v1/account",
            signup_body(client, operator_name="Other Name", oversight_email="BOSS@initech.example"),
            format="json",
        )
    assert again.status_code == 200
    assert again.json()["status"] == "confirmation_sent"
    assert Account.objects.count() == 1
    assert "already oversees" in mail.outbox[-1].body


def test_signup_replays_with_the_same_idempotency_key(client: APIClient) -> None:
    body = signup_body(client)
    first = client.post("/v1/account", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    second = client.post("/v1/account", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert second.status_code == 200
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Account.objects.count() == 1


@pytest.mark.parametrize("field", ["operator_name", "oversight_email"])
def test_missing_required_field(client: APIClient, field: str) -> None:
    response = client.post("/v1/account", signup_body(client, **{field: ...}), format="json")
    assert_error(response, "missing_parameter", param=field)


def test_blank_operator_name_is_missing(client: APIClient) -> None:
    response = client.post("/v1/account", signup_body(client, operator_name=""), format="json")
    assert_error(response, "missing_parameter", param="operator_name")


def test_bad_email_format(client: APIClient) -> None:
    response = client.post(
        "/v1/account", signup_body(client, oversight_email="not-an-email"), format="json"
    )
    assert_error(response, "invalid_parameter", param="oversight_email")


@pytest.mark.parametrize(
    "field", ["accepted_tos", "accepted_operator_agreement", "accepted_anti_spam_policy"]
)
def test_each_acceptance_must_be_true(client: APIClient, field: str) -> None:
    response = client.post("/v1/account", signup_body(client, **{field: False}), format="json")
    assert_error(response, "validation_error", param=field)
    assert Account.objects.count() == 0


def test_missing_acceptance_is_missing_parameter(client: APIClient) -> None:
    response = client.post("/v1/account", signup_body(client, accepted_tos=...), format="json")
    assert_error(response, "missing_parameter", param="accepted_tos")


def test_marketing_use_is_refused(client: APIClient) -> None:
    response = client.post(
        "/v1/account", signup_body(client, email_use_type="marketing"), format="json"
    )
    assert_error(response, "validation_error", param="email_use_type")


@pytest.mark.parametrize("mode", ["autonomous", "read_only", "yolo"])
def test_unsafe_oversight_mode_is_refused(client: APIClient, mode: str) -> None:
    response = client.post("/v1/account", signup_body(client, oversight_mode=mode), format="json")
    assert_error(response, "invalid_parameter", param="oversight_mode")


@pytest.mark.parametrize("slug", ["a", "-abc", "abc-", "ab_c", "héllo", "x" * 64])
def test_bad_slug_format(client: APIClient, slug: str) -> None:
    response = client.post("/v1/account", signup_body(client, slug=slug), format="json")
    assert_error(response, "invalid_parameter", param="slug")


def test_underivable_slug_is_invalid(client: APIClient) -> None:
    response = client.post("/v1/account", signup_body(client, operator_name="!!!"), format="json")
    error = assert_error(response, "invalid_parameter", param="slug")
    assert "operator_name" in error["message"]


def test_taken_slug_has_suggestions(signed_up: Any, client: APIClient) -> None:
    signed_up()
    response = client.post(
        "/v1/account", signup_body(client, oversight_email="x@other.example"), format="json"
    )
    error = assert_error(response, "slug_taken", param="slug")
    assert error["suggestions"]
    assert "initech-labs" not in error["suggestions"]
    assert all(not Account.objects.filter(slug=s).exists() for s in error["suggestions"])


def test_reserved_slug_has_suggestions(client: APIClient) -> None:
    response = client.post("/v1/account", signup_body(client, operator_name="Admin"), format="json")
    error = assert_error(response, "slug_reserved", param="slug")
    assert error["suggestions"]
    assert not set(error["suggestions"]) & RESERVED_SLUGS


def test_bad_attribution_is_dropped_silently(client: APIClient) -> None:
    response = client.post(
        "/v1/account",
        signup_body(client, attribution={"first": {"params": {"evil": 1}}, "junk": True}),
        format="json",
    )
    assert response.status_code == 200
    entry = AuditEntry.objects.get(action="account.created")
    assert entry.metadata["attribution"] is None


def test_good_attribution_is_kept(client: APIClient) -> None:
    attribution = {"first": {"ts": 1, "params": {"utm_source": "hn"}}, "visits": 3, "version": 1}
    response = client.post(
        "/v1/account", signup_body(client, attribution=attribution), format="json"
    )
    assert response.status_code == 200
    assert AuditEntry.objects.get(action="account.created").metadata["attribution"] == attribution


def test_missing_pow_is_missing_parameter(client: APIClient) -> None:
    response = client.post("/v1/account", signup_body(client, pow_solution=...), format="json")
    assert_error(response, "missing_parameter", param="pow_solution")


@pytest.mark.parametrize(
    ("change", "hint"),
    [
        ({"signature": "0" * 64}, "signature"),
        ({"algorithm": "SHA-1"}, "SHA-256"),
        ({"number": 10_000}, "does not solve"),
    ],
)
def test_bad_pow_is_invalid_parameter(client: APIClient, change: dict, hint: str) -> None:
    pow_solution = fresh_pow(client) | change
    response = client.post(
        "/v1/account", signup_body(client, pow_solution=pow_solution), format="json"
    )
    error = assert_error(response, "invalid_parameter", param="pow_solution")
    assert hint in error["message"]


@pytest.mark.parametrize(
    "spliced_salt",
    [
        lambda salt: salt[:-1] + "4",  # the expiry gains a digit: ten times later
        lambda salt: salt + "4",  # after the delimiter: hashes the same bytes without it
    ],
    ids=["into-expiry", "after-delimiter"],
)
def test_pow_salt_cannot_take_digits_from_the_number(
    client: APIClient, monkeypatch: pytest.MonkeyPatch, spliced_salt: Any
) -> None:
    """The challenge hashes salt + number, so moving the number's first digit onto the
    salt keeps the hashed text. ALTCHA's ``&`` at the salt's end (added back when a salt
    lacks it) makes such an edited solution fail."""
    monkeypatch.setattr("altcha.v1.secrets.randbelow", lambda _: 42)
    pow_solution = fresh_pow(client)
    assert pow_solution["number"] == 42
    assert pow_solution["salt"].endswith("&")
    spliced = pow_solution | {"salt": spliced_salt(pow_solution["salt"]), "number": 2}
    response = client.post("/v1/account", signup_body(client, pow_solution=spliced), format="json")
    error = assert_error(response, "invalid_parameter", param="pow_solution")
    assert "does not solve" in error["message"]
    honest = client.post(
        "/v1/account", signup_body(client, pow_solution=pow_solution), format="json"
    )
    assert honest.status_code == 200, honest.content


def test_pow_solution_is_single_use(client: APIClient) -> None:
    pow_solution = fresh_pow(client)
    assert (
        client.post(
            "/v1/account", signup_body(client, pow_solution=pow_solution), format="json"
        ).status_code
        == 200
    )
    response = client.post(
        "/v1/account",
        signup_body(client, pow_solution=pow_solution, oversight_email="two@x.example", slug="two"),
        format="json",
    )
    error = assert_error(response, "invalid_parameter", param="pow_solution")
    assert "already used" in error["message"]


def test_expired_pow_is_refused(client: APIClient, monkeypatch: pytest.MonkeyPatch) -> None:
    pow_solution = fresh_pow(client)
    later = time.time() + 301
    monkeypatch.setattr("accounts.signup.time.time", lambda: later)
    response = client.post(
        "/v1/account", signup_body(client, pow_solution=pow_solution), format="json"
    )
    error = assert_error(response, "invalid_parameter", param="pow_solution")
    assert "expired" in error["message"]


def test_slug_check_available(client: APIClient) -> None:
    body = client.get("/v1/slug-check/Fresh-Name").json()
    assert body == {
        "available": True,
        "slug": "fresh-name",
        "reason": None,
        "suggestions": [],
        "address_preview": "fresh-name@fresh-name.multimail.localhost",
    }


def test_slug_check_taken_and_reserved(signed_up: Any, client: APIClient) -> None:
    signed_up()
    taken = client.get("/v1/slug-check/initech-labs").json()
    assert taken["available"] is False
    assert taken["reason"] == "taken"
    assert taken["suggestions"]
    reserved = client.get("/v1/slug-check/support").json()
    assert reserved["reason"] == "reserved"
    assert reserved["suggestions"]


def test_slug_check_invalid_format(client: APIClient) -> None:
    assert_error(client.get("/v1/slug-check/-bad-"), "invalid_parameter", param="slug")


def test_taken_slug_does_not_use_up_the_pow(signed_up: Any, client: APIClient) -> None:
    signed_up()
    pow_solution = fresh_pow(client)
    body = signup_body(client, pow_solution=pow_solution, oversight_email="x@other.example")
    assert_error(client.post("/v1/account", body, format="json"), "slug_taken")
    retry = client.post("/v1/account", body | {"slug": "initech-two"}, format="json")
    assert retry.status_code == 200
