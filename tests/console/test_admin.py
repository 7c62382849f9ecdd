"""Django admin for support staff: pages render, search, actions are audited as support."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.models import AccountState, ActorKind, ApiKey, AuditEntry
from accounts.services import api_key_create
from mailboxes.models import Suppression
from tests.console.conftest import held_email


@pytest.fixture
def staff(db) -> Client:
    user = get_user_model().objects.create_superuser(username="sam", email="sam@support.example")
    client = Client()
    client.force_login(user)
    return client


def act(staff: Client, action: str, account, reason: str = ""):
    return staff.post(
        reverse("admin:accounts_account_changelist"),
        {"action": action, "_selected_action": [account.pk], "reason": reason},
        follow=True,
    )


def test_every_changelist_and_detail_renders(staff, owner):
    email = held_email(owner.mailbox, html="<p>body <b>bold</b></p>")
    for model in admin.site._registry:
        if model._meta.app_label not in {"accounts", "mailboxes", "oversight", "billing"}:
            continue
        info = (model._meta.app_label, model._meta.model_name)
        response = staff.get(reverse("admin:{}_{}_changelist".format(*info)))
        assert response.status_code == 200, info
    detail = staff.get(reverse("admin:mailboxes_email_change", args=[email.pk]))
    assert detail.status_code == 200
    assert "body &lt;b&gt;bold&lt;/b&gt;" in detail.content.decode()  # shown as text, not HTML


def test_account_search_and_filters(staff, owner, other):
    url = reverse("admin:accounts_account_changelist")
    body = staff.get(url, {"q": "acme"}).content.decode()
    assert "acme" in body
    assert "globex" not in body
    by_email = staff.get(url, {"q": "ops@globex.example"}).content.decode()
    assert "globex" in by_email
    filtered = staff.get(url, {"plan__exact": "pro"}).content.decode()
    assert "acme" not in filtered


@pytest.mark.django_db(transaction=True)
def test_deactivate_needs_a_reason_and_is_audited(staff, owner):
    refused = act(staff, "deactivate", owner.account)
    assert "Give a reason" in refused.content.decode()
    owner.account.refresh_from_db()
    assert owner.account.state == AccountState.ACTIVE
    mail.outbox.clear()
    act(staff, "deactivate", owner.account, reason="Phishing reports")
    owner.account.refresh_from_db()
    assert owner.account.state == AccountState.DEACTIVATED
    assert owner.account.deactivated_reason == "Phishing reports"
    entry = AuditEntry.objects.get(account=owner.account, action="account.deactivated")
    assert entry.actor_kind == ActorKind.SUPPORT
    assert entry.actor_label == "support:sam"
    assert "Phishing reports" in mail.outbox[-1].body
    act(staff, "reactivate", owner.account)
    owner.account.refresh_from_db()
    assert owner.account.state == AccountState.ACTIVE


@pytest.mark.django_db(transaction=True)
def test_disable_and_enable_sending(staff, owner):
    act(staff, "disable_sending", owner.account, reason="Bounce rate 12%")
    owner.account.refresh_from_db()
    assert owner.account.sending_disabled
    assert owner.account.sending_disabled_reason == "Bounce rate 12%"
    act(staff, "enable_sending", owner.account)
    owner.account.refresh_from_db()
    assert not owner.account.sending_disabled
    assert AuditEntry.objects.filter(action="account.sending_enabled").exists()


@pytest.mark.django_db(transaction=True)
def test_recover_key_emails_a_new_admin_key(staff, owner):
    mail.outbox.clear()
    response = act(staff, "recover_key", owner.account)
    assert "New admin key emailed" in response.content.decode()
    key = ApiKey.objects.get(account=owner.account, name="Recovered admin key")
    assert key.scopes == ["admin"]
    assert mail.outbox[-1].to == [owner.account.oversight_email]
    assert key.prefix in mail.outbox[-1].body
    assert key.prefix not in response.content.decode()
    assert AuditEntry.objects.filter(action="api_key.recovered", actor_kind="support").exists()


@pytest.mark.django_db(transaction=True)
def test_resend_activation(staff, owner):
    owner.account.state = AccountState.PENDING
    owner.account.save()
    mail.outbox.clear()
    act(staff, "resend_activation", owner.account)
    assert mail.outbox
    again = act(staff, "resend_activation", owner.account)
    assert "5 minutes" in again.content.decode()


def test_key_admin_never_shows_the_hash(staff, owner):
    key, _ = api_key_create(account=owner.account, name="k", scopes=["read"])
    page = staff.get(reverse("admin:accounts_apikey_change", args=[key.pk])).content.decode()
    assert key.prefix in page
    assert key.key_hash not in page


def test_audit_log_is_read_only(staff, owner):
    assert staff.get(reverse("admin:accounts_auditentry_add")).status_code == 403


def test_account_edit_goes_through_the_service(staff, owner):
    url = reverse("admin:accounts_account_change", args=[owner.account.pk])
    page = staff.get(url)
    assert page.status_code == 200
    response = staff.post(
        url,
        {
            "name": "Acme Renamed",
            "oversight_email": owner.account.oversight_email,
            "physical_address": "",
            "require_operator_approval": "on",
            "operators-TOTAL_FORMS": "1",
            "operators-INITIAL_FORMS": "1",
            "operators-MIN_NUM_FORMS": "0",
            "operators-MAX_NUM_FORMS": "1000",
            "operators-0-id": owner.operator.pk,
            "operators-0-account": owner.account.pk,
            "oversight_email_changes-TOTAL_FORMS": "0",
            "oversight_email_changes-INITIAL_FORMS": "0",
            "oversight_email_changes-MIN_NUM_FORMS": "0",
            "oversight_email_changes-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    owner.account.refresh_from_db()
    assert owner.account.name == "Acme Renamed"
    assert AuditEntry.objects.filter(action="account.updated", actor_kind="support").exists()


def test_suppression_remove_keeps_hard_bounces(staff, owner):
    soft = Suppression.objects.create(
        account=owner.account, email_address="s@x.example", reason="complaint"
    )
    hard = Suppression.objects.create(
        account=owner.account, email_address="h@x.example", reason="hard_bounce"
    )
    response = staff.post(
        reverse("admin:mailboxes_suppression_changelist"),
        {"action": "remove", "_selected_action": [soft.pk, hard.pk]},
        follow=True,
    )
    assert "hard-bounced" in response.content.decode()
    assert not Suppression.objects.filter(pk=soft.pk).exists()
    assert Suppression.objects.filter(pk=hard.pk).exists()
