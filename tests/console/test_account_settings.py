"""The account settings page: PATCH /v1/account's settings, the oversight email (the new
address confirms first), export and delete with the account's name typed out."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Account, AuditEntry
from tests.conftest import Tenant, make_tenant
from tests.console.conftest import signed_in

PAGE = "/console/account"


def _settings(**changes: object) -> dict[str, object]:
    values: dict[str, object] = {
        "name": "Acme Labs",
        "physical_address": "1 Main St, Springfield",
        "require_operator_approval": "on",
        "approval_expiry_hours": "48",
    }
    values.update(changes)
    return {name: value for name, value in values.items() if value is not None}


def test_the_page_shows_the_current_settings(owner: Tenant, console: Client) -> None:
    body = console.get(PAGE).content.decode()
    assert f'value="{owner.account.name}"' in body
    assert owner.account.oversight_email in body
    assert 'href="/console/account/export"' in body
    assert 'href="/console/account/delete"' in body
    # The navigation links here.
    assert 'href="/console/account" aria-current="page"' in body


def test_saving_the_settings_applies_them_and_says_so_beside_the_form(
    owner: Tenant, console: Client
) -> None:
    saved = console.post(PAGE, _settings(require_operator_approval=None), follow=True)
    assert saved.redirect_chain == [(PAGE, 302)]
    account = Account.objects.get(pk=owner.account.pk)
    assert account.name == "Acme Labs"
    assert account.physical_address == "1 Main St, Springfield"
    assert account.require_operator_approval is False
    assert account.approval_expiry_hours == 48
    body = saved.content.decode()
    assert '<p class="feedback success" role="status">Settings saved.</p>' in body
    entry = AuditEntry.objects.filter(account=account, action="account.updated").get()
    assert sorted(entry.metadata["fields"]) == [
        "approval_expiry_hours",
        "name",
        "physical_address",
        "require_operator_approval",
    ]
    # Shown once.
    assert "Settings saved." not in console.get(PAGE).content.decode()


@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(hours=st.one_of(st.integers(max_value=-1), st.integers(min_value=100_000), st.text()))
def test_bad_expiry_is_refused_next_to_the_field(owner: Tenant, hours: object) -> None:
    client = signed_in(owner)
    response = client.post(PAGE, _settings(approval_expiry_hours=str(hours)), follow=True)
    assert response.redirect_chain == [(PAGE, 302)]
    form = response.context["settings_form"]
    assert form.errors["approval_expiry_hours"]
    assert Account.objects.get(pk=owner.account.pk).approval_expiry_hours == 72


def test_an_empty_name_is_refused(owner: Tenant, console: Client) -> None:
    response = console.post(PAGE, _settings(name=""), follow=True)
    assert response.context["settings_form"].errors["name"] == ["This field is required."]
    assert Account.objects.get(pk=owner.account.pk).name == owner.account.name


def test_a_new_oversight_email_confirms_first(
    owner: Tenant, console: Client, django_capture_on_commit_callbacks: Any
) -> None:
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = console.post(
            "/console/account/oversight-email",
            {"oversight_email": "new-ops@acme.example"},
            follow=True,
        )
    assert response.redirect_chain == [(PAGE, 302)]
    # Nothing changed yet: the new address was asked to confirm, the old one was told.
    assert Account.objects.get(pk=owner.account.pk).oversight_email == owner.account.oversight_email
    recipients = sorted(address for message in mail.outbox for address in message.to)
    assert recipients == sorted(["new-ops@acme.example", owner.account.oversight_email])
    body = response.content.decode()
    assert "new-ops@acme.example was sent a confirmation link" in body
    assert "Waiting for <strong>new-ops@acme.example</strong> to confirm" in body


def test_a_refused_oversight_email_shows_the_catalog_message_at_the_field(
    owner: Tenant, console: Client
) -> None:
    # A mailbox of this server: an agent could read the operator's mail there.
    response = console.post(
        "/console/account/oversight-email", {"oversight_email": owner.mailbox.address}, follow=True
    )
    form = response.context["email_form"]
    assert form.errors["oversight_email"]
    assert form.data["oversight_email"] == owner.mailbox.address
    assert 'class="feedback error" role="alert"' in response.content.decode()
    assert Account.objects.get(pk=owner.account.pk).oversight_email == owner.account.oversight_email


def test_the_same_address_again_is_refused(owner: Tenant, console: Client) -> None:
    response = console.post(
        "/console/account/oversight-email",
        {"oversight_email": owner.account.oversight_email},
        follow=True,
    )
    assert "is already the oversight email" in str(response.context["email_form"].errors)


def test_export_downloads_the_apis_export_once_an_hour(owner: Tenant, console: Client) -> None:
    response = console.get("/console/account/export")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment")
    data = json.loads(response.content)
    assert data["account"]["name"] == owner.account.name
    assert [row["address"] for row in data["mailboxes"]] == [owner.mailbox.address]
    assert AuditEntry.objects.filter(account=owner.account, action="account.exported").exists()
    again = console.get("/console/account/export", follow=True)
    assert again.redirect_chain == [(PAGE, 302)]
    assert "One export per hour" in again.content.decode()


def test_delete_needs_the_name_typed_exactly(owner: Tenant, console: Client) -> None:
    url = "/console/account/delete"
    page = console.get(url).content.decode()
    assert owner.account.name in page
    wrong = console.post(url, {"account_name": "acme org"}, follow=True)
    assert wrong.redirect_chain == [(url, 302)]
    assert "exactly as shown" in str(wrong.context["form"].errors["account_name"])
    assert Account.objects.filter(pk=owner.account.pk).exists()
    done = console.post(url, {"account_name": owner.account.name}, follow=True)
    assert done.redirect_chain[-1][0].startswith("/console/login")
    assert not Account.objects.filter(pk=owner.account.pk).exists()
    assert "all its data are deleted" in done.content.decode()
    # The session ended with the account.
    assert console.get(PAGE)["Location"].startswith("/console/login")


def test_delete_touches_only_the_signed_in_account(
    owner: Tenant, other: Tenant, console: Client
) -> None:
    console.post("/console/account/delete", {"account_name": other.account.name})
    assert Account.objects.filter(pk=other.account.pk).exists()
    assert Account.objects.filter(pk=owner.account.pk).exists()


def test_settings_change_only_the_signed_in_account(
    owner: Tenant, other: Tenant, console: Client
) -> None:
    console.post(PAGE, _settings(name="Renamed"))
    assert Account.objects.get(pk=other.account.pk).name == other.account.name


@pytest.mark.django_db
def test_the_old_expiry_url_still_works() -> None:
    tenant = make_tenant("expiryco")
    client = signed_in(tenant)
    client.post("/console/approval-expiry", {"approval_expiry_hours": "5"})
    assert Account.objects.get(pk=tenant.account.pk).approval_expiry_hours == 5
