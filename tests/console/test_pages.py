"""Activation, approvals, API keys, mailboxes, audit log and the settings pages."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.test import Client, TestCase
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.actors import Actor
from accounts.codes import code_issue
from accounts.models import (
    Account,
    AccountState,
    AdminActionRequest,
    AdminActionStatus,
    ApiKey,
    AuditEntry,
    CodePurpose,
)
from accounts.services import audit_record
from billing.models import UsageDaily, UsageEventType
from mailboxes.filters import EmailFilter
from mailboxes.models import (
    Direction,
    Domain,
    Email,
    EmailStatus,
    Mailbox,
    Suppression,
    WebhookDelivery,
    WebhookSubscription,
)
from multimail.ids import new_id
from tests.conftest import client_for, key_for
from tests.console.conftest import held_email, pending_account

CODE = re.compile(r"\b([A-Z2-9]{3}-[A-Z2-9]{3}-[A-Z2-9]{3})\b")


# --- Activation -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_confirm_shows_first_key_once():
    account, code = pending_account("newco")
    client = Client()
    form = client.get(f"/confirm?code={code}")
    assert form.status_code == 200
    assert code in form.content.decode()
    done = client.post("/confirm", {"code": code}, follow=True)
    body = done.content.decode()
    assert done.redirect_chain == [("/confirm", 302)]
    assert "no-cache" in done["Cache-Control"] or "no-store" in done["Cache-Control"]
    raw = re.search(r'id="first-key">(mm_live_[^<]+)<', body).group(1)
    assert 'data-copy-target="first-key"' in body
    assert "/console/login" in body
    account.refresh_from_db()
    assert account.state == AccountState.ACTIVE
    assert ApiKey.objects.get(account=account).prefix == raw[:16]
    # Reloading the page shows the form, not the key a second time.
    reloaded = client.get("/confirm").content.decode()
    assert raw not in reloaded
    assert "Activate your account" in reloaded
    again = client.post("/confirm", {"code": code}, follow=True)
    assert "code-validation_error" in again.content.decode()
    assert "mm_live_" not in again.content.decode()


@pytest.mark.django_db(transaction=True)
def test_confirm_too_many_wrong_codes():
    client = Client()
    for _ in range(5):
        client.post("/confirm", {"code": "AAA-BBB-CCC"})
    blocked = client.post("/confirm", {"code": "AAA-BBB-CCC"}, follow=True)
    assert "code-too_many_attempts" in blocked.content.decode()


def test_confirm_requires_a_code(db):
    response = Client().post("/confirm", {"code": ""}, follow=True)
    assert response.redirect_chain == [("/confirm", 302)]
    assert "This field is required." in response.content.decode()


# --- Admin actions awaiting approval ----------------------------------------------------


def _pending_request(account, action="api_key.create"):
    code, _ = code_issue(
        account=account, purpose=CodePurpose.ADMIN_ACTION, ttl=timedelta(hours=1), subject="d"
    )
    return AdminActionRequest.objects.create(
        account=account,
        action=action,
        params={"name": "ci", "scopes": ["read"]},
        digest="d",
        code=code,
        expires_at=timezone.now() + timedelta(hours=1),
    )


def test_approvals_approve_and_deny(owner, other, console):
    first = _pending_request(owner.account)
    second = _pending_request(owner.account)
    foreign = _pending_request(other.account)
    page = console.get("/console/approvals").content.decode()
    assert first.pk in page
    assert second.pk in page
    assert foreign.pk not in page
    # Every page's navigation counts what waits for the operator (this account's only).
    assert 'aria-label="2 awaiting approval"' in console.get("/console/mailboxes").content.decode()
    console.post(f"/console/approvals/{first.pk}", {"action": "approve"})
    assert 'aria-label="1 awaiting approval"' in console.get("/console/keys").content.decode()
    [created] = ApiKey.objects.filter(account=owner.account, name="ci")
    assert created.scopes == ["read"]
    first.refresh_from_db()
    assert first.status == AdminActionStatus.COMPLETED
    # The stored result is JSON: the key's datetimes as ISO 8601 text, and no secret.
    assert first.result["id"] == created.pk
    assert parse_datetime(first.result["created_at"]) == created.created_at.replace(
        microsecond=created.created_at.microsecond // 1000 * 1000
    )
    assert "api_key" not in first.result
    response = console.post(f"/console/approvals/{second.pk}", {"action": "deny"}, follow=True)
    assert "denied" in response.content.decode()
    second.refresh_from_db()
    assert second.status == AdminActionStatus.DENIED
    # None left: the badge is hidden (it stays in the page for the counts' refresh).
    assert (
        'id="approvals-badge" class="badge" hidden' in console.get("/console/keys").content.decode()
    )
    again = console.post(f"/console/approvals/{second.pk}", {"action": "approve"}, follow=True)
    assert "code-conflict" in again.content.decode()
    stranger = console.post(f"/console/approvals/{foreign.pk}", {"action": "approve"}, follow=True)
    assert "code-not_found" in stranger.content.decode()


def test_approving_an_agents_key_request_creates_the_key(owner, console):
    """An agent asks for a key over the API; the operator approves it on the Approvals
    page. The stored result holds the key's datetimes, which once made this page fail."""
    owner.account.require_operator_approval = True
    owner.account.save(update_fields=["require_operator_approval"])
    _, raw = key_for(owner.account, "admin")
    with TestCase.captureOnCommitCallbacks(execute=True):
        pending = client_for(raw).post(
            "/v1/api-keys", {"name": "reporting", "scopes": ["read"]}, format="json"
        )
    assert pending.status_code == 202
    approval_id = pending.json()["approval_id"]
    response = console.post(f"/console/approvals/{approval_id}", {"action": "approve"})
    assert response.status_code == 302
    assert "approved and done" in console.get(response["Location"]).content.decode()
    key = ApiKey.objects.get(account=owner.account, name="reporting")
    assert key.scopes == ["read"]
    assert key.is_active
    request = AdminActionRequest.objects.get(pk=approval_id)
    assert request.status == AdminActionStatus.COMPLETED
    assert request.result["id"] == key.pk


def test_approving_an_agents_account_deletion_deletes_it(owner, console):
    """The deletion runs last in the approval: it takes the request and its audit with it."""
    owner.account.require_operator_approval = True
    owner.account.save(update_fields=["require_operator_approval"])
    _, raw = key_for(owner.account, "admin")
    with TestCase.captureOnCommitCallbacks(execute=True):
        pending = client_for(raw).delete("/v1/account")
    assert pending.status_code == 202
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = console.post(
            f"/console/approvals/{pending.json()['approval_id']}", {"action": "approve"}
        )
    assert response.status_code == 302
    assert not Account.objects.filter(pk=owner.account.pk).exists()
    assert mail.outbox[-1].subject == "[MultiMail] Account deleted"


# --- API keys ---------------------------------------------------------------------------


def test_create_key_shows_it_once_and_revoke(owner, other, console):
    response = console.post(
        "/console/keys", {"name": "agent", "scopes": ["read", "send"]}, follow=True
    )
    assert response.redirect_chain == [("/console/keys", 302)]
    body = response.content.decode()
    raw = re.search(r'id="new-key">(mm_live_[^<]+)<', body).group(1)
    key = ApiKey.objects.get(account=owner.account, name="agent")
    assert key.scopes == ["read", "send"]
    assert raw.startswith(key.prefix)
    listing = console.get("/console/keys").content.decode()
    assert raw not in listing
    assert key.prefix in listing
    assert key.key_hash not in listing
    console.post(f"/console/keys/{key.pk}/revoke", {"confirmed": "yes"})
    key.refresh_from_db()
    assert not key.is_active
    foreign, _ = (
        ApiKey.objects.create(
            account=other.account, name="x", prefix="mm_live_zzzzzzzz", key_hash="h"
        ),
        None,
    )
    refused = console.post(f"/console/keys/{foreign.pk}/revoke", {"confirmed": "yes"}, follow=True)
    assert "code-not_found" in refused.content.decode()
    foreign.refresh_from_db()
    assert foreign.is_active


def test_key_with_send_and_oversight_is_refused(console):
    response = console.post(
        "/console/keys", {"name": "bad", "scopes": ["send", "oversight"]}, follow=True
    )
    assert "code-validation_error" in response.content.decode()
    assert "mm_live_" not in response.content.decode()


# --- Mailboxes --------------------------------------------------------------------------


def test_mailbox_list_shows_mode_and_sends_today(owner, console):
    Email.objects.create(
        account=owner.account,
        mailbox=owner.mailbox,
        direction=Direction.OUTBOUND,
        status=EmailStatus.SENT,
        from_address=owner.mailbox.address,
        to=["x@y.example"],
        thread_id=new_id(),
    )
    body = console.get("/console/mailboxes").content.decode()
    assert owner.mailbox.address in body
    assert "Autonomous" in body
    assert "1 / 20" in body  # day one of warm-up


def test_mailbox_list_query_count(owner, console):
    def count(n: int) -> int:
        for index in range(n):
            Mailbox.objects.create(
                account=owner.account, address=f"m{n}-{index}@acme.multimail.localhost"
            )
        with CaptureQueriesContext(connection) as queries:
            console.get("/console/mailboxes")
        return len(queries)

    assert count(1) == count(10)


def test_mailbox_emails_filtered_with_the_api_filter(owner, other, console):
    held_email(owner.mailbox, subject="Alpha report")
    held_email(owner.mailbox, direction=Direction.INBOUND, subject="Beta question")
    url = f"/console/mailboxes/{owner.mailbox.pk}"
    body = console.get(url).content.decode()
    assert "Alpha report" in body
    assert "Beta question" in body
    filtered = console.get(url, {"direction": "inbound"}).content.decode()
    assert "Beta question" in filtered
    assert "Alpha report" not in filtered
    partial = console.get(url, {"subject_contains": "alpha"}, headers={"HX-Request": "true"})
    assert "<html" not in partial.content.decode()
    assert "Alpha report" in partial.content.decode()
    bad = console.get(url, {"status": "nope"})
    assert "code-invalid_parameter" in bad.content.decode()
    foreign = console.get(f"/console/mailboxes/{other.mailbox.pk}", follow=True)
    assert "code-not_found" in foreign.content.decode()


def test_the_operator_searches_held_mail_too(owner, console):
    held_email(owner.mailbox, direction=Direction.INBOUND, subject="Gamma contract")
    held_email(owner.mailbox, subject="Delta notes")
    url = f"/console/mailboxes/{owner.mailbox.pk}"
    found = console.get(url, {"q": "contract"}).content.decode()
    assert "Gamma contract" in found
    assert "Delta notes" not in found
    bad = console.get(url, {"q": '"open'})
    assert "code-invalid_parameter" in bad.content.decode()


def test_mailbox_filter_inputs_and_errors_come_from_the_api_filter(owner, api, console):
    url = f"/console/mailboxes/{owner.mailbox.pk}"
    page = console.get(url, {"since_id": "X"}).content.decode()
    for name in EmailFilter.base_filters:
        # since_id is a filter of the page's URL but not an input.
        assert (f'name="{name}"' in page) is (name != "since_id"), name
    query = {"date_before": "2026-13-45"}
    refused = api("read").get(f"/v1/mailboxes/{owner.mailbox.pk}/emails", query)
    assert refused.json()["error"]["message"] in console.get(url, query).content.decode()


def test_email_list_query_count(owner, console):
    def count(n: int) -> int:
        for _ in range(n):
            held_email(owner.mailbox)
        with CaptureQueriesContext(connection) as queries:
            console.get(f"/console/mailboxes/{owner.mailbox.pk}")
        return len(queries)

    assert count(1) == count(12)


def test_email_detail_and_thread(owner, console):
    first = held_email(owner.mailbox, direction=Direction.INBOUND, subject="Question")
    reply = held_email(owner.mailbox, subject="Re: Question", thread_id=first.thread_id)
    detail = console.get(f"/console/mailboxes/{owner.mailbox.pk}/emails/{first.pk}")
    assert "Question" in detail.content.decode()
    thread = console.get(f"/console/mailboxes/{owner.mailbox.pk}/threads/{first.thread_id}")
    body = thread.content.decode()
    assert "Re: Question" in body
    assert reply.pk in body
    missing = console.get(f"/console/mailboxes/{owner.mailbox.pk}/threads/nothing", follow=True)
    assert "code-not_found" in missing.content.decode()


def test_mode_change_down_and_up(owner, console):
    url = f"/console/mailboxes/{owner.mailbox.pk}/mode"
    console.post(url, {"mode": "gated_all", "confirmed": "yes"})
    owner.mailbox.refresh_from_db()
    assert owner.mailbox.oversight_mode == "gated_all"
    response = console.post(url, {"mode": "autonomous", "confirmed": "yes"}, follow=True)
    owner.mailbox.refresh_from_db()
    assert owner.mailbox.oversight_mode == "autonomous"
    assert "is now Autonomous" in response.content.decode()
    assert AuditEntry.objects.filter(action="mailbox.upgraded").exists()
    bad = console.post(url, {"mode": "reckless"}, follow=True)
    assert "Choose one of the oversight modes." in bad.content.decode()


def test_mailbox_settings(owner, console):
    url = f"/console/mailboxes/{owner.mailbox.pk}/settings"
    response = console.post(
        url,
        {
            "display_name": "Sales bot",
            "auto_bcc": "archive@acme.example",
            "default_gate_timing": "gate_first",
            "scheduling_enabled": "on",
        },
        follow=True,
    )
    assert "Settings saved." in response.content.decode()
    owner.mailbox.refresh_from_db()
    assert owner.mailbox.display_name == "Sales bot"
    assert owner.mailbox.auto_bcc == "archive@acme.example"
    bad = console.post(url, {"auto_cc": "not-an-address", "default_gate_timing": "gate_first"})
    assert bad.status_code == 302


# --- Audit log --------------------------------------------------------------------------


def test_audit_log_pages_and_query_count(owner, other, console):
    actor = Actor.for_operator(owner.operator)
    audit_record(
        actor=Actor.for_operator(other.operator), action="foreign.thing", resource_type="x"
    )

    def count(n: int) -> int:
        for index in range(n):
            audit_record(actor=actor, action=f"thing.{index}", resource_type="x")
        with CaptureQueriesContext(connection) as queries:
            body = console.get("/console/audit").content.decode()
        assert "foreign.thing" not in body
        return len(queries)

    assert count(2) == count(60)
    first = console.get("/console/audit").content.decode()
    cursor = first.split("?cursor=")[1].split('"')[0]
    more = console.get(f"/console/audit?cursor={cursor}", headers={"HX-Request": "true"})
    assert "<html" not in more.content.decode()
    assert "<tr" in more.content.decode()


# --- Domains, webhooks, suppression, usage, billing --------------------------------------


def test_domains_need_a_plan_with_domains(console):
    response = console.post("/console/domains", {"domain": "mail.acme-corp.example"}, follow=True)
    assert "code-plan_feature_unavailable" in response.content.decode()


def test_domain_add_and_verify(owner, console, monkeypatch):
    owner.account.plan = "pro"
    owner.account.save()
    response = console.post("/console/domains", {"domain": "mail.acme-corp.example"}, follow=True)
    body = response.content.decode()
    assert "set the DNS records below" in body
    domain = Domain.objects.get(account=owner.account)
    assert domain.dns_records["mx"]["type"] in body
    from mailboxes.services import domains as domain_services

    monkeypatch.setattr(domain_services, "_record_verified", lambda kind, record: True)
    verified = console.post(f"/console/domains/{domain.pk}/verify", headers={"HX-Request": "true"})
    assert 'id="domain-status"' in verified.content.decode()
    assert "<html" not in verified.content.decode()
    domain.refresh_from_db()
    assert domain.status == Domain.Status.ACTIVE


def test_webhook_create_secret_history_and_replay(owner, console, monkeypatch):
    from mailboxes import enqueue

    queued = []
    monkeypatch.setattr(enqueue, "deliver_webhook_after_commit", lambda _: queued.append(1))
    response = console.post(
        "/console/webhooks",
        {"url": "https://93.184.215.14/mm", "events": ["message.received"]},
        follow=True,
    )
    hook = WebhookSubscription.objects.get(account=owner.account)
    assert hook.signing_secret in response.content.decode()
    failed = WebhookDelivery.objects.create(
        account=owner.account,
        subscription=hook,
        event_type="message.received",
        url=hook.url,
        status=WebhookDelivery.Status.FAILED,
        attempts=8,
        last_error="HTTP 500",
    )
    page = console.get(f"/console/webhooks/{hook.pk}").content.decode()
    assert "HTTP 500" in page
    assert f"/deliveries/{failed.pk}" in page
    replayed = console.post(
        f"/console/webhooks/{hook.pk}/deliveries/{failed.pk}/replay", follow=True
    )
    assert "Replay queued" in replayed.content.decode()
    assert queued == [1]
    console.post(f"/console/webhooks/{hook.pk}/action", {"action": "rotate", "confirmed": "yes"})
    hook.refresh_from_db()
    assert hook.previous_secret
    console.post(f"/console/webhooks/{hook.pk}/action", {"action": "delete", "confirmed": "yes"})
    assert not WebhookSubscription.objects.filter(pk=hook.pk).exists()


def test_webhook_needs_https(console):
    response = console.post(
        "/console/webhooks",
        {"url": "http://hooks.acme.example/mm", "events": ["message.sent"]},
        follow=True,
    )
    assert "code-invalid_parameter" in response.content.decode()


def test_suppression_remove_except_hard_bounce(owner, console):
    Suppression.objects.create(account=owner.account, email_address="a@x.example", reason="manual")
    Suppression.objects.create(
        account=owner.account, email_address="b@x.example", reason="hard_bounce"
    )
    page = console.get("/console/suppression").content.decode()
    assert "a@x.example" in page
    assert "permanent" in page
    console.post("/console/suppression/remove", {"address": "a@x.example", "confirmed": "yes"})
    assert not Suppression.objects.filter(email_address="a@x.example").exists()
    refused = console.post(
        "/console/suppression/remove", {"address": "b@x.example", "confirmed": "yes"}, follow=True
    )
    assert "code-suppression_permanent" in refused.content.decode()


def test_usage_chart(owner, console):
    UsageDaily.objects.create(
        account=owner.account,
        date=timezone.now().date(),
        event_type=UsageEventType.EMAILS_SENT,
        count=7,
    )
    body = console.get("/console/usage").content.decode()
    assert "<svg" in body
    assert 'class="bar"' in body
    assert f"{timezone.now().date().isoformat()}: 7" in body
    previous = console.get("/console/usage?period=previous&event_type=bogus")
    assert previous.status_code == 200


def test_billing_page_and_misconfigured_checkout(console, settings):
    settings.STRIPE_SECRET_KEY = ""
    response = console.get("/console/billing")
    assert "https://checkout.stripe.com" in response["Content-Security-Policy"]
    page = response.content.decode()
    assert "Plan: Starter" in page
    response = console.post(
        "/console/billing/action",
        {"action": "checkout", "plan": "pro", "interval": "monthly"},
        follow=True,
    )
    assert "code-server_misconfigured" in response.content.decode()
    bogus = console.post(
        "/console/billing/action", {"action": "checkout", "plan": "platinum"}, follow=True
    )
    assert "Choose one of the paid plans" in bogus.content.decode()
    cancel = console.post(
        "/console/billing/action", {"action": "cancel", "confirmed": "yes"}, follow=True
    )
    assert "code-conflict" in cancel.content.decode()


@pytest.mark.parametrize(
    "path",
    [
        "/console/",
        "/console/approvals",
        "/console/mailboxes",
        "/console/keys",
        "/console/domains",
        "/console/webhooks",
        "/console/suppression",
        "/console/usage",
        "/console/billing",
        "/console/audit",
        "/console/operators",
    ],
)
def test_every_page_has_the_layout_and_accessibility_basics(console, path):
    response = console.get(path)
    body = response.content.decode()
    assert response.status_code == 200
    assert 'class="skip-link" href="#main"' in body
    assert '<main id="main"' in body
    assert "<nav" in body
    assert "<header" in body
    assert 'hx-headers=\'{"X-CSRFToken"' in body
    assert 'name="viewport"' in body
    assert "<script>" not in body
    assert "style=" not in body
    # Every visible input has a label.
    for input_id in re.findall(r'<(?:input|select|textarea)[^>]*\bid="([^"]+)"', body):
        assert f'for="{input_id}"' in body, (path, input_id)


def test_operator_downloads_attachments_as_files(owner, other, console):
    from mailboxes.models import Attachment

    email = held_email(owner.mailbox, direction=Direction.INBOUND)
    Attachment.objects.create(
        email=email, filename="page.html", content_type="text/html", size=20, content=b"<script>"
    )
    base = f"/console/mailboxes/{owner.mailbox.pk}/emails/{email.pk}"
    assert f"{base}/attachments/page.html" in console.get("/console/").content.decode()
    response = console.get(f"{base}/attachments/page.html")
    assert response.status_code == 200
    assert response.content == b"<script>"
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;")
    missing = console.get(f"{base}/attachments/nope.txt", follow=True)
    assert "does not exist" in missing.content.decode()
    foreign = held_email(other.mailbox)
    stranger = console.get(
        f"/console/mailboxes/{owner.mailbox.pk}/emails/{foreign.pk}/attachments/x", follow=True
    )
    assert "code-not_found" in stranger.content.decode()


def test_load_images_for_a_decided_email_redirects_the_page(owner, console):
    email = held_email(owner.mailbox)
    email.status = EmailStatus.REJECTED
    email.save()
    response = console.get(f"/console/queue/{email.pk}?images=1", headers={"HX-Request": "true"})
    assert response["HX-Redirect"] == "/console/"


def test_deleted_mailbox_mail_stays_readable(owner, console):
    email = held_email(owner.mailbox, direction=Direction.INBOUND, subject="Kept after delete")
    owner.mailbox.is_active = False
    owner.mailbox.deleted_at = timezone.now()
    owner.mailbox.save()
    listing = console.get("/console/mailboxes").content.decode()
    assert "Deleted mailboxes" in listing
    page = console.get(f"/console/mailboxes/{owner.mailbox.pk}").content.decode()
    assert "Kept after delete" in page
    assert "Change mode" not in page
    detail = console.get(f"/console/mailboxes/{owner.mailbox.pk}/emails/{email.pk}")
    assert detail.status_code == 200
    refused = console.post(
        f"/console/mailboxes/{owner.mailbox.pk}/mode", {"mode": "read_only"}, follow=True
    )
    assert "code-not_found" in refused.content.decode()


def test_billing_redirects_to_stripe(console, monkeypatch):
    from console.views import settings as views

    monkeypatch.setattr(
        views, "checkout_start", lambda **kw: {"checkout_url": "https://checkout.stripe.test/s"}
    )
    monkeypatch.setattr(
        views, "portal_session_create", lambda **kw: "https://billing.stripe.test/p"
    )
    checkout = console.post(
        "/console/billing/action", {"action": "checkout", "plan": "pro", "interval": "annual"}
    )
    assert checkout.status_code == 302
    assert checkout["Location"] == "https://checkout.stripe.test/s"
    portal = console.post("/console/billing/action", {"action": "portal"})
    assert portal["Location"] == "https://billing.stripe.test/p"
