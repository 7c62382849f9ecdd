"""The review screen in a real browser: list and pane at a laptop's and a phone's size, the
keyboard for everything, the next email after a decision, new mail and every count."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Account
from mailboxes.models import Direction, Email, EmailStatus, Mailbox
from multimail.ids import new_id
from tests.conftest import Tenant, client_for, key_for
from tests.console.conftest import held_email
from tests.console.test_browser import (
    A11Y_PROBE,
    ARTIFACTS,
    browser,
    page,
    pane_settled,
    sign_in_cookie,
)

__all__ = ["browser", "page"]  # the fixtures, shared with test_browser.py

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIZES = [(1366, 900, "laptop"), (390, 844, "phone")]
LONG_LINE = "A plain-text line far wider than any phone: " + "word " * 40 + "x" * 90


def queue_shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"queue-{name}.png"), full_page=True)


def _sales(tenant: Tenant) -> Mailbox:
    return Mailbox.objects.create(
        account=tenant.account, address="sales@acme.multimail.localhost", oversight_mode="gated_all"
    )


def _fill(tenant: Tenant) -> list[Email]:
    sales = _sales(tenant)
    now = timezone.now()
    return [
        held_email(tenant.mailbox, subject="Invoice for March", to=["ann@client.example"],
                   status_changed_at=now - timedelta(hours=30)),
        held_email(tenant.mailbox, subject="Plain text reply", html="", text=LONG_LINE,
                   to=["bob@partner.example", "carol@partner.example"]),
        held_email(sales, subject="Question about pricing", direction=Direction.INBOUND,
                   message_id=new_id(), status_changed_at=now - timedelta(hours=2)),
    ]  # fmt: skip


def _open_queue(page, live_server, tenant: Tenant, width: int, height: int) -> list[Email]:
    """Three held emails, the queue open on them at that size."""
    page.set_viewport_size({"width": width, "height": height})
    emails = _fill(tenant)
    sign_in_cookie(page, live_server, tenant)
    page.goto("/console/")
    return emails


@pytest.mark.parametrize(("width", "height", "name"), SIZES)
def test_list_and_pane_at_both_sizes(page, live_server, owner, width, height, name):
    first, plain, inbound = _open_queue(page, live_server, owner, width, height)
    pane = page.locator("#queue-pane")
    assert page.locator(".queue-row").count() == 3
    assert pane.locator(f"#email-{first.pk}").is_visible()  # the oldest is open
    assert page.evaluate(A11Y_PROBE) == []
    assert page.locator(".shortcuts").is_visible() == (name == "laptop")
    box, pane_box = page.locator(".queue-column").bounding_box(), pane.bounding_box()
    if name == "laptop":
        # Side by side: the pane starts at the list's top, to its right.
        assert pane_box["x"] >= box["x"] + box["width"]
        assert abs(pane_box["y"] - box["y"]) < 4
    else:
        assert pane_box["y"] >= box["y"] + box["height"]  # below it
    queue_shot(page, f"review-{name}")

    # Opening another email swaps the pane without leaving the page.
    page.locator(f"#open-{plain.pk}").click()
    page.wait_for_selector(f"#queue-pane #email-{plain.pk}")
    pane_settled(page)
    assert page.url.endswith("/console/")
    body = pane.locator(".email-body")
    assert body.evaluate("el => el.scrollWidth <= el.clientWidth")  # wraps in its box
    assert "current" in (page.locator(f"#row-{plain.pk}").get_attribute("class") or "")
    # Focus went to the opened email, which on a phone scrolls it into view.
    assert page.evaluate("document.activeElement.id") == f"email-{plain.pk}"
    if name == "phone":
        top = pane.locator(f"#email-{plain.pk}").bounding_box()["y"]
        assert 0 <= top < height  # on screen
        assert pane.get_by_role("link", name="← Back to the list").is_visible()
    assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth")
    queue_shot(page, f"open-{name}")

    # The filters (folded on a phone): choosing a mailbox applies at once, and the counts
    # per mailbox stay in sight.
    if name == "phone":
        page.locator("#filter-panel > summary").click()
    page.get_by_label("Mailbox", exact=True).select_option(label=inbound.mailbox.address)
    page.wait_for_url(re.compile(rf"mailbox={inbound.mailbox.pk}"))
    assert page.locator(".queue-row").count() == 1
    assert pane.locator(f"#email-{inbound.pk}").is_visible()
    assert page.locator("#filter-panel").get_attribute("open") is not None  # a filter is on
    counts = page.locator("#mailbox-counts").inner_text()
    assert f"{owner.mailbox.address} 2" in counts
    assert f"{inbound.mailbox.address} 1" in counts
    queue_shot(page, f"filtered-{name}")


def test_the_keyboard_for_everything(page, live_server, owner):
    first, plain, inbound = _open_queue(page, live_server, owner, 1366, 900)
    # ? shows the shortcuts; Escape closes them.
    page.keyboard.press("?")
    help_box = page.locator("#shortcuts-help")
    assert help_box.is_visible()
    assert "Shift" in help_box.inner_text()
    queue_shot(page, "shortcuts-help")
    page.keyboard.press("Escape")
    assert not help_box.is_visible()
    # / goes to the filters.
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.name") == "mailbox"
    page.keyboard.press("Escape")
    # j/k move the cursor, Enter and o open the email under it.
    page.keyboard.press("j")
    assert "cursor" in (page.locator(f"#row-{plain.pk}").get_attribute("class") or "")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#queue-pane #email-{plain.pk}")
    pane_settled(page)  # the keys after it move from the open email, as for a person
    page.keyboard.press("j")
    page.keyboard.press("o")
    page.wait_for_selector(f"#queue-pane #email-{inbound.pk}")
    pane_settled(page)
    page.keyboard.press("k")
    page.keyboard.press("k")
    assert "cursor" in (page.locator(f"#row-{first.pk}").get_attribute("class") or "")
    # x selects for a batch; Shift+A approves the selection through the confirmation page.
    page.keyboard.press("x")
    page.keyboard.press("j")
    page.keyboard.press("x")
    assert page.locator(f"#select-{first.pk}").is_checked()
    assert page.locator(f"#select-{plain.pk}").is_checked()
    page.keyboard.press("k")
    page.keyboard.press("x")
    assert not page.locator(f"#select-{first.pk}").is_checked()
    page.keyboard.press("x")
    page.keyboard.press("Shift+A")
    page.wait_for_url(re.compile(r"/console/queue/batch\?"))
    confirm = page.locator("#confirm-action").inner_text()
    assert "Invoice for March" in confirm
    assert "Plain text reply" in confirm
    assert "Question about pricing" not in confirm
    assert Email.objects.get(pk=first.pk).status == EmailStatus.PENDING_SEND_APPROVAL


@pytest.mark.parametrize(("width", "height", "name"), SIZES)
def test_each_decision_opens_the_next_email(page, live_server, owner, width, height, name):
    first, plain, inbound = _open_queue(page, live_server, owner, width, height)
    pane = page.locator("#queue-pane")
    pane.get_by_role("button", name="Approve").click()
    page.wait_for_selector(f"#pane-outcome[data-decided='{first.pk}']")
    pane_settled(page)
    assert "Approved and sent." in page.locator("#pane-outcome").inner_text()
    # The next one is open, has the focus, and the decided one left the list.
    page.wait_for_selector(f"#queue-pane #email-{plain.pk}")
    pane_settled(page)
    assert page.evaluate("document.activeElement.id") == f"email-{plain.pk}"
    assert page.locator(f"#row-{first.pk}").count() == 0
    assert page.locator("#pending-badge").inner_text() == "2"
    assert page.title().startswith("Queue (2)")
    queue_shot(page, f"decided-next-{name}")
    # The reject reason, then Enter; then the last one; then nothing is left.
    pane.get_by_label("Reason").fill("Wrong partner")
    pane.get_by_label("Reason").press("Enter")
    page.wait_for_selector(f"#queue-pane #email-{inbound.pk}")
    pane_settled(page)
    assert Email.objects.get(pk=plain.pk).decision_reason == "Wrong partner"
    pane.get_by_role("button", name="Approve").click()
    page.wait_for_selector("#pane-empty")
    assert page.locator("#pending-badge").inner_text() == "0"
    assert page.title().startswith("Queue (0)")
    assert "No mailbox has mail waiting." in page.locator("#mailbox-counts").inner_text()


def test_a_failed_decision_shows_why_in_the_pane(page, live_server, owner):
    first, plain, _ = _open_queue(page, live_server, owner, 1366, 900)
    # Decided elsewhere (the API) while the operator had it open.
    _, raw = key_for(owner.account, "oversight")
    decided = client_for(raw).post(
        "/v1/oversight/decide", {"email_id": first.pk, "action": "reject"}, format="json"
    )
    assert decided.status_code == 200, decided.content
    page.locator("#queue-pane").get_by_role("button", name="Approve").click()
    outcome = page.locator("#pane-outcome")
    outcome.wait_for()
    pane_settled(page)
    assert outcome.get_attribute("role") == "alert"
    assert "Nothing was decided" in outcome.inner_text()
    assert "see the message above" not in page.content().lower()
    # The reason has the focus, in sight, above the next email.
    assert page.evaluate("document.activeElement.id") == "pane-outcome"
    top = outcome.bounding_box()["y"]
    assert 0 <= top < 900
    assert page.locator(f"#queue-pane #email-{plain.pk}").is_visible()
    queue_shot(page, "failed-decision")


@pytest.mark.parametrize(("width", "height", "name"), SIZES)
def test_new_mail_is_highlighted_and_every_count_agrees(
    page, live_server, owner, width, height, name
):
    first, _, inbound = _open_queue(page, live_server, owner, width, height)
    # An admin action first, then the mail: the refresh that lists the mail has both.
    Account.objects.filter(pk=owner.account.pk).update(require_operator_approval=True)
    _, raw = key_for(owner.account, "admin")
    asked = client_for(raw).post("/v1/api-keys", {"name": "Ops", "scopes": ["read"]}, format="json")
    assert asked.status_code == 202, asked.content
    arrived = held_email(inbound.mailbox, subject="Arrived while watching",
                         direction=Direction.INBOUND, message_id=new_id())  # fmt: skip
    row = page.locator(f"#row-{arrived.pk}")
    # One refresh (2 s here), on a busy machine; the row is marked once the swap settles.
    page.locator(f"#row-{arrived.pk}.arrived").wait_for(timeout=25_000)
    # One refresh brought every count: title, badge, per mailbox, Approvals.
    assert page.locator("#pending-badge").inner_text() == "4"
    assert page.title().startswith("Queue (4)")
    assert f"{inbound.mailbox.address} 2" in page.locator("#mailbox-counts").inner_text()
    approvals = page.locator("#approvals-badge")
    assert approvals.text_content() == "1"  # in the folded menu on a phone
    if name == "laptop":
        assert approvals.is_visible()
    assert page.locator(f"#queue-pane #email-{first.pk}").is_visible()  # the pane stayed
    queue_shot(page, f"arrived-{name}")
    # Opening it clears the highlight.
    page.locator(f"#open-{arrived.pk}").click()
    page.wait_for_selector(f"#queue-pane #email-{arrived.pk}")
    pane_settled(page)
    assert "arrived" not in (row.get_attribute("class") or "")

    # Every other page keeps the navigation's counts current too.
    page.goto("/console/mailboxes")
    held_email(owner.mailbox, subject="Held while elsewhere")
    page.wait_for_selector("#pending-badge:text-is('5')", timeout=25_000)
    assert page.locator("#approvals-badge").text_content() == "1"
