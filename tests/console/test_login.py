"""Sign-in by emailed code: start, verify, rate limits, no enumeration, sign-out, switch."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from accounts.models import AuditEntry, Operator
from accounts.sign_in import SESSION_ACCOUNT_KEY
from tests.conftest import make_tenant

CODE = re.compile(r"\b([A-Z2-9]{3}-[A-Z2-9]{3}-[A-Z2-9]{3})\b")


def request_code(client: Client, email: str) -> str | None:
    mail.outbox.clear()
    response = client.post("/console/login", {"email": email})
    assert response.status_code == 302
    assert response["Location"].startswith("/console/login/verify?email=")
    if not mail.outbox:
        return None
    match = CODE.search(mail.outbox[-1].body)
    assert match
    return match.group(1)


@pytest.mark.django_db(transaction=True)
def test_sign_in_with_emailed_code(owner):
    client = Client()
    code = request_code(client, owner.operator.email)
    assert code
    message = mail.outbox[-1]
    assert message.to == [owner.operator.email]
    assert "/console/login/verify?email=" in message.body
    # The link only shows the form; nothing is redeemed by a GET.
    page = client.get(f"/console/login/verify?email={owner.operator.email}&code={code}")
    assert page.status_code == 200
    assert code in page.content.decode()
    response = client.post("/console/login/verify", {"email": owner.operator.email, "code": code})
    assert response.status_code == 302
    assert response["Location"] == "/console/"
    assert client.session[SESSION_ACCOUNT_KEY] == owner.account.pk
    assert client.get("/console/").status_code == 200
    assert AuditEntry.objects.filter(account=owner.account, action="console.signed_in").exists()
    # Single use.
    client.post("/console/logout")
    again = client.post("/console/login/verify", {"email": owner.operator.email, "code": code})
    assert again.status_code == 200
    assert "code-validation_error" in again.content.decode()


@pytest.mark.django_db(transaction=True)
def test_oversight_email_becomes_operator_on_first_sign_in(owner):
    owner.account.oversight_email = "boss@acme.example"
    owner.account.save()
    client = Client()
    code = request_code(client, "Boss@Acme.example")
    response = client.post("/console/login/verify", {"email": "boss@acme.example", "code": code})
    assert response.status_code == 302
    assert Operator.objects.filter(account=owner.account, email="boss@acme.example").exists()


@pytest.mark.django_db(transaction=True)
def test_unknown_email_gets_the_same_answer(db):
    client = Client()
    assert request_code(client, "nobody@nowhere.example") is None
    page = client.get("/console/login/verify?email=nobody@nowhere.example")
    assert "If n*****@nowhere.example may sign in" in page.content.decode()


@pytest.mark.django_db(transaction=True)
def test_codes_per_email_are_limited(owner):
    client = Client()
    for _ in range(5):
        assert request_code(client, owner.operator.email)
    response = client.post("/console/login", {"email": owner.operator.email}, follow=True)
    assert "code-rate_limit_exceeded" in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_wrong_codes_per_ip_answer_too_many_attempts(owner):
    client = Client()
    code = request_code(client, owner.operator.email)
    for _ in range(5):
        wrong = client.post(
            "/console/login/verify", {"email": owner.operator.email, "code": "AAA-AAA-AAA"}
        )
        assert "code-validation_error" in wrong.content.decode()
    blocked = client.post("/console/login/verify", {"email": owner.operator.email, "code": code})
    assert blocked.status_code == 200
    assert "code-too_many_attempts" in blocked.content.decode()


def test_console_requires_sign_in(db):
    response = Client().get("/console/mailboxes")
    assert response.status_code == 302
    assert response["Location"].startswith("/console/login?next=")
    htmx = Client().get("/console/", headers={"HX-Request": "true"})
    assert htmx["HX-Redirect"] == "/console/login"


@pytest.mark.django_db(transaction=True)
def test_switch_between_accounts(owner, console):
    second = make_tenant("initech")
    Operator.objects.create(
        account=second.account, user=owner.operator.user, email=owner.operator.email
    )
    page = console.get("/console/mailboxes")
    assert 'name="account_id"' in page.content.decode()
    console.post("/console/switch", {"account_id": second.account.pk})
    page = console.get("/console/mailboxes")
    assert second.mailbox.address in page.content.decode()
    assert owner.mailbox.address not in page.content.decode()


def test_switch_to_a_foreign_account_is_refused(owner, other, console):
    response = console.post("/console/switch", {"account_id": other.account.pk}, follow=True)
    assert "You do not operate that account." in response.content.decode()
    assert console.session[SESSION_ACCOUNT_KEY] == owner.account.pk


@pytest.mark.django_db(transaction=True)
def test_invite_operator_who_then_signs_in(owner, console):
    mail.outbox.clear()
    response = console.post(
        "/console/operators", {"email": "colleague@acme.example", "name": "Col"}, follow=True
    )
    assert "colleague@acme.example is now an operator" in response.content.decode()
    assert mail.outbox[-1].to == ["colleague@acme.example"]
    duplicate = console.post("/console/operators", {"email": "colleague@acme.example"})
    assert "code-conflict" in duplicate.content.decode()
    invitee = Client()
    code = request_code(invitee, "colleague@acme.example")
    invitee.post("/console/login/verify", {"email": "colleague@acme.example", "code": code})
    assert invitee.get("/console/").status_code == 200


def test_sign_out(console):
    response = console.post("/console/logout")
    assert response.status_code == 302
    assert console.get("/console/").status_code == 302


def test_login_page_sends_a_signed_in_operator_on(console):
    response = console.get("/console/login?next=/console/keys")
    assert response.status_code == 302
    assert response["Location"] == "/console/keys"
    offsite = console.get("/console/login?next=https://evil.example/")
    assert offsite["Location"] == "/console/"


def test_console_root_aliases(console):
    assert console.get("/console")["Location"] == "/console/"
    assert console.get("/console/queue").status_code == 200


def test_deactivated_account_sends_its_operator_to_the_login_form(owner, console):
    owner.account.state = "deactivated"
    owner.account.save()
    response = console.get("/console/")
    assert response["Location"].startswith("/console/login")
    page = console.get(response["Location"])
    assert page.status_code == 200  # the form, not a redirect loop
