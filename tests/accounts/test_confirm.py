"""POST/GET /v1/confirm, GET /v1/confirm/{code}, POST /v1/account/resend-confirmation."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from rest_framework.test import APIClient

from accounts.models import Account, AccountState, ApiKey
from tests.accounts.conftest import last_code
from tests.conftest import assert_error, client_for

pytestmark = pytest.mark.django_db


def test_confirm_activates_and_returns_the_first_key(signed_up: Any) -> None:
    client, code = signed_up(use_case="Triage support mail")
    response = client.post("/v1/confirm", {"code": code}, format="json")
    assert response.status_code == 200
    body = response.json()
    account = Account.objects.get()
    assert account.state == AccountState.ACTIVE
    mailbox = account.mailboxes.get()
    assert body == {
        "status": "active",
        "name": "Initech Labs",
        "slug": "initech-labs",
        "oversight_mode": "gated_send",
        "api_key": body["api_key"],
        "mailbox_id": mailbox.pk,
        "mailbox_address": mailbox.address,
        "oversight_email": "boss@initech.example",
        "use_case": "Triage support mail",
    }
    assert ApiKey.objects.get(account=account).scopes == ["read", "send", "admin"]
    assert client_for(body["api_key"]).get("/v1/account").status_code == 200


@pytest.mark.parametrize("transform", [lambda c: c.replace("-", ""), lambda c: c.lower()])
def test_confirm_accepts_code_without_dashes_any_case(signed_up: Any, transform: Any) -> None:
    client, code = signed_up()
    assert client.post("/v1/confirm", {"code": transform(code)}, format="json").status_code == 200


def test_code_works_once(signed_up: Any) -> None:
    client, code = signed_up()
    assert client.post("/v1/confirm", {"code": code}, format="json").status_code == 200
    again = client.post("/v1/confirm", {"code": code}, format="json")
    assert_error(again, "validation_error", param="code")


def test_wrong_code_is_validation_error(signed_up: Any) -> None:
    client, _ = signed_up()
    response = client.post("/v1/confirm", {"code": "AAA-BBB-CCC"}, format="json")
    assert_error(response, "validation_error", param="code")
    assert Account.objects.get().state == AccountState.PENDING


def test_missing_code(client: Any) -> None:
    assert_error(
        APIClient().post("/v1/confirm", {}, format="json"), "missing_parameter", param="code"
    )


def test_more_than_five_wrong_codes_per_hour_are_refused(signed_up: Any) -> None:
    client, code = signed_up()
    for _ in range(5):
        response = client.post("/v1/confirm", {"code": "AAA-BBB-CCC"}, format="json")
        assert_error(response, "validation_error")
    blocked = client.post("/v1/confirm", {"code": code}, format="json")
    assert_error(blocked, "too_many_attempts")
    assert int(blocked["Retry-After"]) >= 1
    assert Account.objects.get().state == AccountState.PENDING


def test_get_confirm_redirects_to_the_page() -> None:
    client = APIClient()
    plain = client.get("/v1/confirm")
    assert plain.status_code == 302
    assert plain["Location"] == "/confirm"
    with_code = client.get("/v1/confirm/SKP-7D2-4V8")
    assert with_code.status_code == 302
    assert with_code["Location"] == "/confirm?code=SKP-7D2-4V8"


def test_pending_account_key_is_not_activated(signed_up: Any) -> None:
    from accounts.services import api_key_create

    signed_up()
    _, raw = api_key_create(account=Account.objects.get(), name="early", scopes=["read"])
    assert_error(client_for(raw).get("/v1/account"), "account_not_activated")


def test_resend_sends_a_new_code_and_retires_the_old(
    signed_up: Any, django_capture_on_commit_callbacks: Any, time_machine_cache: Any
) -> None:
    client, old_code = signed_up()
    time_machine_cache()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/v1/account/resend-confirmation",
            {"oversight_email": "boss@initech.example"},
            format="json",
        )
    assert response.status_code == 200
    assert response.json()["status"] == "confirmation_resent"
    new_code = last_code()
    assert new_code != old_code
    assert_error(client.post("/v1/confirm", {"code": old_code}, format="json"), "validation_error")
    assert client.post("/v1/confirm", {"code": new_code}, format="json").status_code == 200


def test_resend_within_five_minutes_of_signup_is_refused(signed_up: Any) -> None:
    client, _ = signed_up()
    response = client.post(
        "/v1/account/resend-confirmation",
        {"oversight_email": "boss@initech.example"},
        format="json",
    )
    error = assert_error(response, "confirmation_recently_sent")
    assert 1 <= int(response["Retry-After"]) <= 300
    assert "5 minutes" in error["message"]


def test_resend_twice_is_refused() -> None:
    client = APIClient()
    body = {"oversight_email": "nobody@unknown.example"}
    assert client.post("/v1/account/resend-confirmation", body, format="json").status_code == 200
    again = client.post("/v1/account/resend-confirmation", body, format="json")
    assert_error(again, "confirmation_recently_sent")


def test_resend_for_unknown_email_answers_like_success() -> None:
    response = APIClient().post(
        "/v1/account/resend-confirmation", {"oversight_email": "ghost@x.example"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["status"] == "confirmation_resent"
    assert mail.outbox == []


def test_resend_for_active_account_is_conflict(owner: Any) -> None:
    response = APIClient().post(
        "/v1/account/resend-confirmation",
        {"oversight_email": owner.account.oversight_email},
        format="json",
    )
    assert_error(response, "conflict", param="oversight_email")


@pytest.mark.parametrize(
    ("body", "code"), [({}, "missing_parameter"), ({"oversight_email": "x"}, "invalid_parameter")]
)
def test_resend_validates_the_email(body: dict, code: str) -> None:
    response = APIClient().post("/v1/account/resend-confirmation", body, format="json")
    assert_error(response, code, param="oversight_email")
