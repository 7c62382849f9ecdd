"""A new oversight email confirms before it gains anything; the old one is told and can
undo; operators remove operators. Through HTTP: Django admin, the API, the console."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import AuditEntry, Operator, OversightEmailChange
from tests.conftest import Tenant
from tests.console.conftest import signed_in
from tests.console.test_login import request_code

LINK = re.compile(r"https?://\S+/console/oversight-email/(confirm|undo)\?token=(\S+)")
NEW = "new-boss@elsewhere.example"


def _links() -> dict[str, str]:
    found: dict[str, str] = {}
    for message in mail.outbox:
        for kind, token in LINK.findall(message.body):
            found[kind] = token
    return found


def _mail_to(address: str) -> list[Any]:
    return [message for message in mail.outbox if address in message.to]


@pytest.fixture
def staff() -> Client:
    user = get_user_model().objects.create_superuser(username="sam", email="sam@support.example")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def signup_owner(owner: Tenant) -> Tenant:
    """The owner as signup makes it: its operator role is the oversight email's."""
    Operator.objects.filter(pk=owner.operator.pk).update(via_oversight_email=True)
    owner.operator.refresh_from_db()
    return owner


def _admin_change(staff: Client, tenant: Tenant, email: str) -> Any:
    url = reverse("admin:accounts_account_change", args=[tenant.account.pk])
    roles = list(Operator.objects.filter(account=tenant.account).order_by("created_at"))
    form = {
        "name": tenant.account.name,
        "oversight_email": email,
        "physical_address": "",
        "require_operator_approval": "",
        "operators-TOTAL_FORMS": str(len(roles)),
        "operators-INITIAL_FORMS": str(len(roles)),
        "operators-MIN_NUM_FORMS": "0",
        "operators-MAX_NUM_FORMS": "1000",
        "oversight_email_changes-TOTAL_FORMS": "0",
        "oversight_email_changes-INITIAL_FORMS": "0",
        "oversight_email_changes-MIN_NUM_FORMS": "0",
        "oversight_email_changes-MAX_NUM_FORMS": "1000",
    }
    for index, role in enumerate(roles):
        form[f"operators-{index}-id"] = role.pk
        form[f"operators-{index}-account"] = tenant.account.pk
    mail.outbox.clear()
    response = staff.post(url, form)
    assert response.status_code == 302, response.content.decode()[:3000]
    return response


def _follow_link(kind: str, token: str) -> Client:
    """Open the mailed link, then click its button (the confirmed POST)."""
    browser = Client()
    path = f"/console/oversight-email/{kind}"
    page = browser.get(path, {"token": token})
    assert page.status_code == 200
    assert 'name="confirmed" value="yes"' in page.content.decode()
    done = browser.post(path, {"token": token, "confirmed": "yes"})
    assert done.status_code == 302
    return browser


@pytest.mark.django_db(transaction=True)
def test_admin_change_waits_for_the_new_address_then_the_old_one_can_undo(staff, signup_owner):
    owner = signup_owner
    old = owner.account.oversight_email
    _admin_change(staff, owner, NEW)

    # Nothing changed yet: the new address only got a link, the old one was told.
    owner.account.refresh_from_db()
    assert owner.account.oversight_email == old
    links = _links()
    assert set(links) == {"confirm", "undo"}
    assert "confirm" in _mail_to(NEW)[0].body
    assert NEW in _mail_to(old)[0].body
    assert request_code(Client(), NEW) is None  # no sign-in code for the new address
    assert not Operator.objects.filter(account=owner.account, email=NEW).exists()

    # Opening the link (a mail scanner) decides nothing; the click does.
    Client().get("/console/oversight-email/confirm", {"token": links["confirm"]})
    owner.account.refresh_from_db()
    assert owner.account.oversight_email == old
    mail.outbox.clear()
    _follow_link("confirm", links["confirm"])
    owner.account.refresh_from_db()
    assert owner.account.oversight_email == NEW
    assert any("confirmed" in message.body for message in _mail_to(old))
    # The old address's role was the oversight email's: it ends with it.
    assert not Operator.objects.filter(pk=owner.operator.pk).exists()

    # The new address signs in and becomes an operator...
    newcomer = Client()
    code = request_code(newcomer, NEW)
    assert code
    newcomer.post("/console/login/verify", {"email": NEW, "code": code})
    assert newcomer.get("/console/").status_code == 200
    # ...until the old address undoes the change: the role goes with it, at once.
    mail.outbox.clear()
    _follow_link("undo", links["undo"])
    owner.account.refresh_from_db()
    assert owner.account.oversight_email == old
    assert not Operator.objects.filter(account=owner.account, email=NEW).exists()
    assert newcomer.get("/console/").status_code == 302
    assert _mail_to(NEW)
    # A link works once.
    again = Client().post(
        "/console/oversight-email/undo",
        {"token": links["undo"], "confirmed": "yes"},
        follow=True,
    )
    assert "code-already_decided" in again.content.decode()
    actions = set(AuditEntry.objects.filter(account=owner.account).values_list("action", flat=True))
    assert {
        "account.oversight_email_change_requested",
        "account.oversight_email_changed",
        "account.oversight_email_change_undone",
    } <= actions


@pytest.mark.django_db(transaction=True)
def test_reverting_in_admin_removes_the_role_the_change_gave(staff, signup_owner):
    owner = signup_owner
    old = owner.account.oversight_email
    _admin_change(staff, owner, NEW)
    _follow_link("confirm", _links()["confirm"])
    newcomer = Client()
    newcomer.post("/console/login/verify", {"email": NEW, "code": request_code(newcomer, NEW)})
    assert Operator.objects.filter(account=owner.account, email=NEW).exists()

    owner.account.refresh_from_db()
    _admin_change(staff, owner, old)
    _follow_link("confirm", _links()["confirm"])
    owner.account.refresh_from_db()
    assert owner.account.oversight_email == old
    assert not Operator.objects.filter(account=owner.account, email=NEW).exists()
    assert newcomer.get("/console/").status_code == 302


@pytest.mark.django_db(transaction=True)
def test_the_old_address_cancels_before_confirmation(staff, signup_owner):
    owner = signup_owner
    old = owner.account.oversight_email
    _admin_change(staff, owner, NEW)
    links = _links()
    _follow_link("undo", links["undo"])
    refused = Client().post(
        "/console/oversight-email/confirm",
        {"token": links["confirm"], "confirmed": "yes"},
        follow=True,
    )
    assert "code-already_decided" in refused.content.decode()
    owner.account.refresh_from_db()
    assert owner.account.oversight_email == old
    assert Operator.objects.filter(pk=owner.operator.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_a_newer_request_replaces_the_waiting_one(staff, signup_owner):
    _admin_change(staff, signup_owner, NEW)
    first = _links()["confirm"]
    _admin_change(staff, signup_owner, "third@elsewhere.example")
    refused = Client().post(
        "/console/oversight-email/confirm", {"token": first, "confirmed": "yes"}, follow=True
    )
    assert "code-already_decided" in refused.content.decode()
    signup_owner.account.refresh_from_db()
    assert signup_owner.account.oversight_email == "ops@acme.example"


@pytest.mark.django_db(transaction=True)
def test_api_patch_asks_the_new_address_to_confirm(api, owner):
    response = api("admin").patch("/v1/account", {"oversight_email": NEW}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["oversight_email"] == "ops@acme.example"
    assert body["pending_oversight_email"] == NEW
    assert _mail_to(NEW)
    _follow_link("confirm", _links()["confirm"])
    after = api("read").get("/v1/account").json()
    assert after["oversight_email"] == NEW
    assert after["pending_oversight_email"] is None


@pytest.mark.django_db(transaction=True)
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(token=st.text(min_size=0, max_size=80))
def test_no_other_token_decides_anything(staff, signup_owner, token):
    if not OversightEmailChange.objects.exists():
        _admin_change(staff, signup_owner, NEW)
    for kind in ("confirm", "undo"):
        page = Client().get(f"/console/oversight-email/{kind}", {"token": token}, follow=True)
        assert page.status_code == 200
        posted = Client().post(
            f"/console/oversight-email/{kind}", {"token": token, "confirmed": "yes"}, follow=True
        )
        assert "code-not_found" in posted.content.decode()
    assert OversightEmailChange.objects.get().status == OversightEmailChange.Status.PENDING
    signup_owner.account.refresh_from_db()
    assert signup_owner.account.oversight_email == "ops@acme.example"


# --- Operators remove operators ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_operator_removes_another_after_confirming(owner):
    console = signed_in(owner)
    console.post("/console/operators", {"email": "colleague@acme.example", "name": "Col"})
    colleague = Operator.objects.get(account=owner.account, email="colleague@acme.example")
    colleague_console = Client()
    colleague_console.force_login(colleague.user)
    assert colleague_console.get("/console/").status_code == 200

    url = f"/console/operators/{colleague.pk}/remove"
    listing = console.get("/console/operators").content.decode()
    assert url in listing
    # The button in the list posts without confirmation: it leads to the confirmation page.
    unconfirmed = console.post(url)
    assert unconfirmed.status_code == 302
    assert unconfirmed["Location"] == url
    assert Operator.objects.filter(pk=colleague.pk).exists()
    page = console.get(url)
    assert "Remove operator colleague@acme.example?" in page.content.decode()
    mail.outbox.clear()
    done = console.post(url, {"confirmed": "yes"})
    assert done.status_code == 302
    assert done["Location"] == "/console/operators"
    assert not Operator.objects.filter(pk=colleague.pk).exists()
    assert colleague_console.get("/console/").status_code == 302
    assert _mail_to("colleague@acme.example")
    assert AuditEntry.objects.filter(action="operator.removed", resource_id=colleague.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_the_oversight_address_and_oneself_are_not_removable(owner, other):
    console = signed_in(owner)
    console.post("/console/operators", {"email": "colleague@acme.example"})
    colleague = Operator.objects.get(account=owner.account, email="colleague@acme.example")
    # The owner's operator is the oversight address.
    refused = console.post(
        f"/console/operators/{owner.operator.pk}/remove", {"confirmed": "yes"}, follow=True
    )
    assert "code-conflict" in refused.content.decode()
    as_colleague = Client()
    as_colleague.force_login(colleague.user)
    self_removal = as_colleague.post(
        f"/console/operators/{colleague.pk}/remove", {"confirmed": "yes"}, follow=True
    )
    assert "code-conflict" in self_removal.content.decode()
    # Another tenant's operator is not found from this account.
    foreign = console.post(
        f"/console/operators/{other.operator.pk}/remove", {"confirmed": "yes"}, follow=True
    )
    assert "code-not_found" in foreign.content.decode()
    assert (
        Operator.objects.filter(pk__in=[owner.operator.pk, colleague.pk, other.operator.pk]).count()
        == 3
    )


def test_the_operator_signup_makes_is_the_oversight_emails_role(signed_up: Any) -> None:
    """So it ends when the oversight email moves elsewhere; an invited role does not."""
    signed_up()
    operator = Operator.objects.get(email="boss@initech.example")
    assert operator.via_oversight_email
