"""The team page: operators with their last sign-in, invite, remove and "sign out
everywhere" (each of a role's console sessions that began before it ends)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import AuditEntry, Operator
from accounts.services import operator_create
from tests.conftest import Tenant, key_for
from tests.console.conftest import signed_in
from tests.console.test_login import request_code

PAGE = "/console/operators"


def _sign_in_by_code(email: str) -> Client:
    client = Client()
    code = request_code(client, email)
    assert code
    response = client.post("/console/login/verify", {"email": email, "code": code})
    assert response.status_code == 302
    return client


@pytest.mark.django_db(transaction=True)
def test_last_sign_in_is_shown_after_signing_in(owner: Tenant) -> None:
    colleague = operator_create(account=owner.account, email="col@acme.example", name="Col")
    client = _sign_in_by_code(owner.operator.email)
    owner.operator.refresh_from_db()
    assert owner.operator.last_sign_in_at is not None
    body = client.get(PAGE).content.decode()
    row = body.split(f'id="operator-{colleague.pk}"')[1].split("</tr>")[0]
    assert "never" in row
    mine = body.split(f'id="operator-{owner.operator.pk}"')[1].split("</tr>")[0]
    assert owner.operator.last_sign_in_at.strftime("%Y-%m-%d") in mine
    assert "Sign out everywhere" in mine


@pytest.mark.django_db(transaction=True)
def test_sign_out_everywhere_ends_every_session_of_yourself(owner: Tenant) -> None:
    here = _sign_in_by_code(owner.operator.email)
    elsewhere = _sign_in_by_code(owner.operator.email)
    url = f"/console/operators/{owner.operator.pk}/sign-out"
    confirm = here.get(url)
    assert confirm.status_code == 200
    assert "Sign out everywhere?" in confirm.content.decode()
    # A plain POST only leads to the confirmation.
    assert here.post(url)["Location"] == url
    done = here.post(url, {"confirmed": "yes"}, follow=True)
    assert done.redirect_chain[-1][0] == "/console/login"
    assert "You are signed out everywhere" in done.content.decode()
    for client in (here, elsewhere):
        assert client.get("/console/")["Location"].startswith("/console/login")
    assert AuditEntry.objects.filter(
        account=owner.account, action="operator.sessions_ended", resource_id=owner.operator.pk
    ).exists()
    # Signing in again afterwards works.
    again = _sign_in_by_code(owner.operator.email)
    assert again.get("/console/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_signing_a_colleague_out_leaves_your_session(owner: Tenant) -> None:
    colleague = operator_create(account=owner.account, email="col@acme.example")
    theirs = _sign_in_by_code(colleague.email)
    mine = signed_in(owner)
    done = mine.post(
        f"/console/operators/{colleague.pk}/sign-out", {"confirmed": "yes"}, follow=True
    )
    assert done.redirect_chain == [(PAGE, 302)]
    assert "col@acme.example is signed out on every browser." in done.content.decode()
    assert theirs.get("/console/")["Location"].startswith("/console/login")
    assert mine.get("/console/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_the_apis_session_check_agrees(owner: Tenant) -> None:
    _, raw = key_for(owner.account, "admin")
    browser = _sign_in_by_code(owner.operator.email)
    auth = {"Authorization": f"Bearer {raw}"}
    assert browser.get("/v1/operator/session", headers=auth).json()["active"] is True
    signed_in(owner).post(f"/console/operators/{owner.operator.pk}/sign-out", {"confirmed": "yes"})
    assert browser.get("/v1/operator/session", headers=auth).json()["active"] is False


@pytest.mark.django_db(transaction=True)
def test_an_htmx_request_of_an_ended_session_goes_to_the_login(owner: Tenant) -> None:
    client = _sign_in_by_code(owner.operator.email)
    signed_in(owner).post(f"/console/operators/{owner.operator.pk}/sign-out", {"confirmed": "yes"})
    response = client.get("/console/", headers={"HX-Request": "true"})
    assert response["HX-Redirect"] == "/console/login"


def test_another_accounts_operator_is_not_found(
    owner: Tenant, other: Tenant, console: Client
) -> None:
    for action in ("sign-out", "remove"):
        url = f"/console/operators/{other.operator.pk}/{action}"
        shown = console.get(url, follow=True)
        assert shown.redirect_chain == [(PAGE, 302)]
        assert "does not exist in this account" in shown.content.decode()
        assert other.operator.email not in shown.content.decode()
        done = console.post(url, {"confirmed": "yes"}, follow=True)
        assert "code-not_found" in done.content.decode()
    other.operator.refresh_from_db()
    assert other.operator.sessions_ended_at is None
    assert Operator.objects.filter(pk=other.operator.pk).exists()


def test_a_removed_operator_loses_the_console_at_once(owner: Tenant, console: Client) -> None:
    colleague = operator_create(account=owner.account, email="col@acme.example")
    theirs = signed_in(Tenant(account=owner.account, operator=colleague, mailbox=owner.mailbox))
    assert theirs.get("/console/").status_code == 200
    console.post(f"/console/operators/{colleague.pk}/remove", {"confirmed": "yes"})
    assert theirs.get("/console/")["Location"].startswith("/console/login")


def test_invite_shows_the_new_operator(owner: Tenant, console: Client) -> None:
    done = console.post(PAGE, {"email": "new@acme.example", "name": "New"}, follow=True)
    assert done.redirect_chain == [(PAGE, 302)]
    assert "new@acme.example is now an operator" in done.content.decode()
    assert Operator.objects.filter(account=owner.account, email="new@acme.example").exists()


def test_a_bad_invite_address_is_refused_next_to_the_field(console: Client) -> None:
    response = console.post(PAGE, {"email": "not-an-address"}, follow=True)
    assert response.context["form"].errors["email"]


def test_team_page_query_count_does_not_grow_and_pages_by_cursor(
    owner: Tenant, console: Client
) -> None:
    def count(n: int) -> int:
        start = Operator.objects.filter(account=owner.account).count()
        for index in range(n):
            operator_create(account=owner.account, email=f"op{start + index}@acme.example")
        with CaptureQueriesContext(connection) as queries:
            assert console.get(PAGE).status_code == 200
        return len(queries)

    assert count(1) == count(10)
    first = console.get(PAGE, {"limit": "5"})
    assert first.context["next_cursor"]
    second = console.get(PAGE, {"limit": "5", "cursor": first.context["next_cursor"]})
    first_ids = {op.pk for op in first.context["operators"]}
    assert first_ids.isdisjoint(op.pk for op in second.context["operators"])
