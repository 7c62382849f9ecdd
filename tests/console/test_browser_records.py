"""The records pages in a real browser, on a laptop (1366x900) and a phone (390x844):
webhook deliveries and replay, suppression, the audit log, usage, approvals.

Each flow leaves a screenshot per size in test-artifacts/records-<page>-<size>.png.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from accounts.actors import Actor
from accounts.codes import code_issue
from accounts.models import AdminActionRequest, AdminActionStatus, CodePurpose
from accounts.services import audit_record
from mailboxes.models import Suppression, WebhookDelivery
from mailboxes.services.webhooks import subscription_create, webhook_delivery_attempt
from tests.conftest import Tenant
from tests.console.test_browser import (  # noqa: F401 (browser and page are fixtures)
    A11Y_PROBE,
    ARTIFACTS,
    browser,
    page,
    sign_in_cookie,
)
from tests.hooks.conftest import Receiver, start_receiver  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

SIZES = {"laptop": (1366, 900), "phone": (390, 844)}


@pytest.fixture(params=list(SIZES))
def size(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def sized(page: Any, live_server: Any, size: str, owner: Tenant) -> Any:  # noqa: F811
    """The console suite's page (which fails on any script error or 4xx/5xx), at this
    size and signed in as the owner."""
    width, height = SIZES[size]
    page.set_viewport_size({"width": width, "height": height})
    sign_in_cookie(page, live_server, owner)
    return page


def shot(shown: Any, name: str, size: str) -> None:
    assert shown.evaluate(A11Y_PROBE) == [], name
    shown.screenshot(path=str(ARTIFACTS / f"records-{name}-{size}.png"), full_page=True)


def test_webhook_delivery_request_response_and_replay(
    sized,
    owner,
    size,
    settings,
    start_receiver: Callable[..., Receiver],  # noqa: F811 (the fixture imported above)
):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    receiver = start_receiver(statuses=[500, 200])
    receiver.reply_body = {"error": "database is down"}
    hook = subscription_create(
        actor=Actor.for_operator(owner.operator), url=receiver.url, events=["message.received"]
    )
    delivery = WebhookDelivery.objects.create(
        account=owner.account,
        subscription=hook,
        event_type="message.received",
        url=hook.url,
        payload={"id": "evt_browser", "type": "message.received", "data": {"email_id": "e1"}},
    )
    webhook_delivery_attempt(delivery_id=delivery.pk)
    sized.goto(f"/console/webhooks/{hook.pk}")
    assert sized.get_by_text("HTTP 500: The endpoint answered HTTP 500.").is_visible()
    shot(sized, "webhook", size)
    sized.locator(f"a[href$='/deliveries/{delivery.pk}']").click()
    sized.wait_for_selector("text=Headers sent")
    assert sized.get_by_text("X-MultiMail-Signature").is_visible()
    assert sized.get_by_text('"error": "database is down"').is_visible()
    shot(sized, "webhook-delivery", size)
    sized.get_by_role("button", name="Replay this delivery").click()
    sized.wait_for_selector("text=Replay queued")
    # The replay ran at once (tasks run in-process here) and the receiver took it.
    replay = WebhookDelivery.objects.exclude(pk=delivery.pk).get(subscription=hook)
    assert replay.replay_of_id == delivery.pk
    assert len(receiver.requests) == 2
    sized.reload()
    assert sized.locator("h1 .status").inner_text() == "Delivered"
    shot(sized, "webhook-replayed", size)


def test_suppression_add_and_search(sized, owner, size):
    Suppression.objects.create(
        account=owner.account, email_address="bounced@example.com", reason="hard_bounce"
    )
    Suppression.objects.create(
        account=owner.account, email_address="someone@elsewhere.org", reason="complaint"
    )
    sized.goto("/console/suppression")
    sized.get_by_text("Add an address by hand").click()
    sized.get_by_label("Email address").fill("ann@example.com")
    sized.get_by_label("Reason").select_option("unsubscribe")
    sized.get_by_label("Note (optional)").fill("Asked by phone")
    sized.get_by_role("button", name="Suppress this address").click()
    message = sized.get_by_text("ann@example.com is suppressed (Unsubscribed)")
    message.wait_for()
    # The feedback is on screen where the form was, not somewhere off the top.
    assert message.is_visible()
    assert message.bounding_box()["y"] < SIZES[size][1]
    sized.get_by_label("Address or domain").fill("example.com")
    sized.get_by_role("button", name="Search").click()
    sized.wait_for_url(re.compile(r"q=example\.com"))
    rows = sized.locator("tbody tr")
    assert rows.count() == 2
    assert "someone@elsewhere.org" not in sized.locator("tbody").inner_text()
    shot(sized, "suppression", size)


def test_audit_filter_links_and_export(sized, owner, size):
    actor = Actor.for_operator(owner.operator)
    audit_record(
        actor=actor,
        action="mailbox.updated",
        resource_type="mailbox",
        resource_id=owner.mailbox.pk,
        metadata={"changes": {"oversight_mode": ["gated_send", "autonomous"]}},
    )
    audit_record(actor=actor, action="api_key.revoked", resource_type="api_key", resource_id="k1")
    sized.goto("/console/audit")
    sized.get_by_label("Resource type").select_option("mailbox")
    sized.get_by_role("button", name="Filter").click()
    sized.wait_for_url(re.compile(r"resource_type=mailbox"))
    body = sized.locator("#audit-rows").inner_text()
    assert "mailbox.updated" in body
    assert "api_key.revoked" not in body
    if size == "laptop":  # the details column is hidden on a phone
        assert sized.get_by_text("oversight_mode: gated_send → autonomous").is_visible()
    export = sized.get_by_role("link", name="Download CSV (filtered)")
    assert "resource_type=mailbox" in export.get_attribute("href")
    shot(sized, "audit", size)
    sized.get_by_role("link", name=re.compile(r"mailbox " + owner.mailbox.pk)).click()
    sized.wait_for_url(re.compile(rf"/console/mailboxes/{owner.mailbox.pk}$"))


def test_usage_against_the_plan(sized, owner, size):
    sized.goto("/console/usage")
    assert sized.get_by_text("Against the Starter plan's limits").is_visible()
    assert sized.locator("meter").count() == 6
    assert sized.get_by_text("1 of 2 · 50%").is_visible()  # the owner's one mailbox
    shot(sized, "usage", size)


def test_approvals_summary_warning_and_deny_reason(sized, owner, size):
    code, _ = code_issue(
        account=owner.account, purpose=CodePurpose.ADMIN_ACTION, ttl=timedelta(hours=1), subject="d"
    )
    pending = AdminActionRequest.objects.create(
        account=owner.account,
        action="api_key.create",
        params={"name": "ci", "scopes": ["send", "read"]},
        digest="d",
        code=code,
        expires_at=timezone.now() + timedelta(hours=1),
    )
    sized.goto("/console/approvals")
    assert sized.get_by_text("Create the API key 'ci' with scopes send, read").is_visible()
    assert sized.get_by_text("Nobody will see this key's secret if you approve here.").is_visible()
    shot(sized, "approvals", size)
    sized.get_by_label("Reason for denying (optional)").fill("Not this week")
    sized.get_by_role("button", name="Deny").click()
    sized.wait_for_selector("text=with scopes send, read: denied.")
    pending.refresh_from_db()
    assert (pending.status, pending.deny_reason) == (AdminActionStatus.DENIED, "Not this week")
    assert sized.get_by_text("No admin action is waiting.").is_visible()
