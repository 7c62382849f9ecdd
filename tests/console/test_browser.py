"""The console in a real browser (system Chromium through Playwright) against live_server.

One browser for the whole session; each test gets a fresh context (cookies) and leaves a
screenshot under test-artifacts/.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import Account, ActorKind, ApiKey, AuditEntry
from accounts.services import api_key_create
from mailboxes.lifecycle import email_hold
from mailboxes.models import Attachment, Direction, Domain, Email, EmailStatus, SpamVerdict
from mailboxes.services.rendering import html_to_text
from multimail.ids import new_id
from tests.conftest import Tenant, client_for, key_for
from tests.console.conftest import held_email, pending_account, signed_in
from tests.oversight.conftest import last_token

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Playwright's sync API runs an event loop in this thread; the ORM calls made by the test
# itself (fixtures, assertions) are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CODE = re.compile(r"\b([A-Z2-9]{3}-[A-Z2-9]{3}-[A-Z2-9]{3})\b")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# Module scope: Playwright's sync API runs an event loop in this thread while it is open,
# and later tests that run asyncio themselves (the MCP client) need the thread free.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, live_server: Any) -> Iterator[Any]:
    context = browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844})
    errors: list[str] = []
    page = context.new_page()
    # A CSP violation or a script error shows up here: the console must have none.
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "response",
        lambda response: (
            errors.append(f"{response.status} {response.url}") if response.status >= 400 else None
        ),
    )
    page.set_default_timeout(10_000)
    yield page
    context.close()
    assert errors == []


def sign_in_cookie(page: Any, live_server: Any, tenant: Tenant) -> None:
    client = signed_in(tenant)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"console-{name}.png"), full_page=True)


def pane_settled(page) -> None:
    """Wait until htmx has no request, swap or settle under way: the console marks the
    list's rows and moves the focus once a swap settles (htmx's settle delay), which a
    wait for the swapped-in element alone does not cover."""
    page.wait_for_function(
        "() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')"
    )


def test_sign_in_by_emailed_code(page, owner):
    mail.outbox.clear()
    page.goto("/console/mailboxes")
    page.get_by_label("Email address").fill(owner.operator.email)
    page.get_by_role("button", name="Email me a code").click()
    page.wait_for_url(re.compile(r"/console/login/verify"))
    code = CODE.search(mail.outbox[-1].body).group(1)
    page.get_by_label("Sign-in code").fill(code)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/console/mailboxes$"))
    assert page.get_by_text(owner.mailbox.address).is_visible()
    shot(page, "signed-in")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/console/login"))


def test_activate_account_and_copy_key(page):
    account, code = pending_account("browserco")
    page.goto(f"/confirm?code={code}")
    page.get_by_role("button", name="Activate").click()
    key_text = page.locator("#first-key").inner_text()
    assert key_text.startswith("mm_live_")
    assert ApiKey.objects.get(account=account).prefix == key_text[:16]
    problems = [p for p in page.evaluate(A11Y_PROBE) if p != "no nav landmark"]
    assert problems == []
    shot(page, "activated")


def test_approve_and_reject_from_the_queue(page, live_server, owner):
    owner.mailbox.oversight_mode = "gated_all"
    owner.mailbox.save()
    inbound = held_email(owner.mailbox, direction=Direction.INBOUND, subject="Please approve me")
    outbound = held_email(owner.mailbox, subject="Please reject me")
    sign_in_cookie(page, live_server, owner)
    page.goto("/console/?order=newest")
    assert page.locator("#pending-badge").inner_text() == "2"
    shot(page, "queue")
    # Keyboard: newest first, so the outbound one is open and j moves to the inbound one;
    # the first a only opens it, the second approves it, and the next one opens.
    row_in = page.locator(f"#row-{inbound.pk}")
    page.keyboard.press("j")
    assert "cursor" in (row_in.get_attribute("class") or "")
    page.keyboard.press("a")
    page.wait_for_selector(f"#queue-pane #email-{inbound.pk}")
    pane_settled(page)
    assert Email.objects.get(pk=inbound.pk).status == EmailStatus.PENDING_INBOUND_APPROVAL
    page.keyboard.press("a")
    page.wait_for_selector(f"#pane-outcome[data-decided='{inbound.pk}']")
    pane_settled(page)
    assert page.locator("#pending-badge").inner_text() == "1"
    page.wait_for_selector(f"#queue-pane #email-{outbound.pk}")
    pane_settled(page)
    # r focuses the reason; Enter rejects.
    page.keyboard.press("r")
    page.keyboard.type("Not to this client")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#pane-outcome[data-decided='{outbound.pk}']")
    pane_settled(page)
    assert "Rejected" in page.locator("#pane-outcome").inner_text()
    assert page.locator("#pending-badge").inner_text() == "0"
    shot(page, "queue-decided")
    # The agent's API sees the decisions.
    _, raw = key_for(owner.account, "read")
    agent = client_for(raw)
    base = f"/v1/mailboxes/{owner.mailbox.pk}/emails"
    # Approved inbound mail became readable (reading it marks it read).
    assert agent.get(f"{base}/{inbound.pk}").json()["status"] == EmailStatus.READ
    assert agent.get(f"{base}/{outbound.pk}").json()["status"] == EmailStatus.REJECTED


def test_queue_refreshes_when_mail_is_held(page, live_server, owner):
    sign_in_cookie(page, live_server, owner)
    page.goto("/console/")
    assert page.get_by_text("Nothing is waiting").is_visible()
    # An empty queue still shows a small "0" pill, not a tall empty box.
    badge = page.locator("#pending-badge")
    assert badge.inner_text() == "0"
    assert badge.bounding_box()["height"] <= 24
    held_email(owner.mailbox, subject="Arrived while watching")
    page.wait_for_selector("text=Arrived while watching", timeout=15_000)
    assert page.locator("#pending-badge").inner_text() == "1"


def test_create_and_revoke_a_key(page, live_server, owner):
    sign_in_cookie(page, live_server, owner)
    page.goto("/console/keys")
    page.get_by_label("Name").fill("browser agent")
    page.get_by_label("send", exact=True).check()
    page.get_by_role("button", name="Create key").click()
    raw = page.locator("#new-key").inner_text()
    assert raw.startswith("mm_live_")
    shot(page, "key-created")
    key = ApiKey.objects.get(account=owner.account, name="browser agent")
    # Reloading the page after creating the key neither shows it again nor makes another.
    page.reload()
    assert page.locator("#new-key").count() == 0
    assert ApiKey.objects.filter(account=owner.account, name="browser agent").count() == 1
    page.get_by_role("link", name="Revoke key browser agent").click()
    # A confirmation page first: nothing is revoked until it is confirmed there.
    page.wait_for_selector("text=Revoke key browser agent?")
    assert page.get_by_text("loses access at once").is_visible()
    key.refresh_from_db()
    assert key.is_active
    problems = [p for p in page.evaluate(A11Y_PROBE) if p != "no nav landmark"]
    assert problems == []
    shot(page, "key-revoke-confirmation")
    page.get_by_role("button", name="Revoke key", exact=True).click()
    page.wait_for_selector("text=is revoked")
    key.refresh_from_db()
    assert not key.is_active
    shot(page, "key-revoked")


def test_change_mailbox_mode(page, live_server, owner):
    sign_in_cookie(page, live_server, owner)
    page.goto("/console/mailboxes")
    page.get_by_role("link", name=owner.mailbox.address).click()
    page.get_by_label("New mode").select_option("gated_send")
    page.get_by_role("button", name="Change mode").click()
    page.get_by_role("button", name="Change to Gated: outbound").click()
    page.wait_for_selector("text=is now Gated: outbound")
    owner.mailbox.refresh_from_db()
    assert owner.mailbox.oversight_mode == "gated_send"
    shot(page, "mode-changed")


PAGES = [
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
]

# Runs in the page: what an accessibility checker looks at first.
A11Y_PROBE = """() => {
  const problems = [];
  for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    if (!el.labels.length && !el.getAttribute('aria-label')) problems.push('unlabelled ' + el.name);
  }
  if (!document.querySelector('main#main')) problems.push('no main landmark');
  if (!document.querySelector('nav')) problems.push('no nav landmark');
  if (document.querySelectorAll('h1').length !== 1) problems.push('h1 count');
  const wide = document.scrollingElement.scrollWidth > window.innerWidth + 1;
  if (wide) problems.push('horizontal scroll');
  return problems;
}"""


def test_pages_are_accessible_on_a_phone(page, live_server, owner):
    held_email(owner.mailbox, subject="A long subject line that must wrap on a narrow phone screen")
    sign_in_cookie(page, live_server, owner)
    mailbox_page = f"/console/mailboxes/{owner.mailbox.pk}"
    for path in [*PAGES, mailbox_page]:
        page.goto(path)
        assert page.evaluate(A11Y_PROBE) == [], path
        # The skip link is the first stop of the keyboard and moves focus to the content.
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip-link", path
    shot(page, "mailbox-phone")


def test_support_admin_works_under_the_csp(page, live_server, owner):
    from django.contrib.auth import get_user_model
    from django.test import Client

    staff = get_user_model().objects.create_superuser(username="sam", email="sam@x.example")
    client = Client()
    client.force_login(staff)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    # Django admin's pages ask for /favicon.ico, which this site does not serve.
    page.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    page.goto("/admin/accounts/account/?q=acme")
    page.get_by_role("checkbox", name="Select this object for an action - acme").check()
    page.get_by_label("Action:").select_option("disable_sending")
    page.get_by_label("Reason (shown to the operator)").fill("Complaint rate too high")
    page.get_by_role("button", name="Run").click()
    page.wait_for_selector("text=Sending disabled: 1 account(s).")
    owner.account.refresh_from_db()
    assert owner.account.sending_disabled
    shot(page, "admin-accounts")


# --- The decision facts on the queue card and the hosted approval page ----------------------

PHISHING_HTML = (
    "<p>Hello Dana,</p><p>Your March statement is ready. Please sign in at "
    '<a href="https://clientco.com.account-check.example/login">https://clientco.com/login</a>'
    ' to review it, or read <a href="https://clientco.com/terms">our terms</a>.</p>'
    "<p>Best, Acme Billing</p>"
)


def _the_email(tenant: Tenant) -> Email:
    """A held outbound email with something to see in every fact."""
    tenant.mailbox.display_name = "Acme Billing"
    tenant.mailbox.oversight_mode = "gated_send"
    tenant.mailbox.save()
    key, _ = api_key_create(account=tenant.account, name="Invoicing agent", scopes=["send"])
    email = held_email(
        tenant.mailbox,
        subject="Your March statement",
        to=["dana@clientco.com"],
        cc=["finance@clientco.com"],
        bcc=["collector@partner.example"],
        html=PHISHING_HTML,
        markdown=html_to_text(PHISHING_HTML),
        text=html_to_text(PHISHING_HTML),
        send_at=(timezone.now() + timedelta(days=1)).replace(second=0, microsecond=0),
        gate_timing="gate_first",
        spam_score=15,
        spam_verdict=SpamVerdict.CLEAN,
        spam_reasons=["subject in capitals (+15)"],
        content_findings=[
            "the link text 'https://clientco.com/login' hides a different destination "
            "(https://clientco.com.account-check.example/login)"
        ],
        sent_by_key=key,
        has_attachments=True,
    )
    for name, content_type, content in (
        ("statement.pdf", "application/pdf", b"%PDF-1.7 statement"),
        ("invoice.pdf", "application/pdf", b"MZ\x90\x00\x03\x00 This program cannot be run"),
    ):
        Attachment.objects.create(
            email=email,
            filename=name,
            content_type=content_type,
            size=len(content),
            content=content,
        )
    return email


def test_the_queue_card_shows_the_decision_facts(page, live_server, owner):
    email = _the_email(owner)
    page.set_viewport_size({"width": 1100, "height": 900})
    sign_in_cookie(page, live_server, owner)
    page.goto("/console/")
    card = page.locator(f"#email-{email.pk}")
    warnings = card.locator(".facts-warnings")
    assert warnings.is_visible()
    text = warnings.inner_text()
    assert "clientco.com.account-check.example" in text
    assert "Executable: invoice.pdf is a Windows program" in text
    assert "First contact" in text
    facts = card.locator(".facts-list").inner_text()
    for expected in (
        "Acme Billing <agent@acme.multimail.localhost>",
        "Invoicing agent",
        "collector@partner.example",
        "gate_first",
        "statement.pdf",
        "https://clientco.com/terms",
    ):
        assert expected in facts, expected
    # The deceptive link is flagged where it is listed, and its target is not clickable.
    flagged = card.locator(".links li.flagged")
    assert flagged.count() == 1
    assert "clientco.com.account-check.example" in flagged.inner_text()
    assert card.locator('.facts a[href*="account-check"]').count() == 0
    card.screenshot(path=str(ARTIFACTS / "queue-card-facts.png"))


def test_the_hosted_page_shows_the_decision_facts(page, owner):
    email = _the_email(owner)
    email_hold(email=email)
    page.goto(f"/v1/approve/{last_token()}")
    assert page.locator(".facts-warnings").is_visible()
    assert "Invoicing agent" in page.locator(".facts-list").inner_text()
    assert "collector@partner.example" in page.locator(".facts-list").inner_text()
    assert page.locator(".links li.flagged").count() == 1
    assert page.get_by_role("button", name="Approve and send").is_visible()
    wide = page.evaluate("document.scrollingElement.scrollWidth > window.innerWidth + 1")
    assert wide is False  # readable on a phone without scrolling sideways
    page.screenshot(path=str(ARTIFACTS / "hosted-approval-facts.png"), full_page=True)


def test_a_decision_on_a_card_that_changed_shows_the_current_version(page, live_server, owner):
    """The agent edits a held email while the operator has its card open: Approve decides
    nothing, and the card shows the email as it is now, with a notice saying so."""
    owner.mailbox.oversight_mode = "gated_send"
    owner.mailbox.save()
    _, raw = key_for(owner.account, "send")
    agent = client_for(raw)
    send_at = (timezone.now() + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    sent = agent.post(
        f"/v1/mailboxes/{owner.mailbox.pk}/send",
        {"to": ["client@example.org"], "subject": "Draft contract", "markdown": "Version one",
         "send_at": send_at, "gate_timing": "gate_first"},
        format="json",
    )  # fmt: skip
    email_id = sent.json()["id"]
    sign_in_cookie(page, live_server, owner)
    page.goto("/console/")
    card = page.locator(f"#email-{email_id}")
    assert "Draft contract" in card.inner_text()

    edited = agent.patch(
        f"/v1/mailboxes/{owner.mailbox.pk}/emails/{email_id}/schedule",
        {"subject": "Contract, final terms", "bcc": ["rival@example.net"]},
        format="json",
    )
    assert edited.status_code == 200
    card.get_by_role("button", name="Approve").click()
    page.wait_for_selector(f"#email-{email_id} .notice.stale")
    text = card.inner_text()
    assert "This email changed after you opened it, so nothing was decided" in text
    assert "Contract, final terms" in text
    assert "rival@example.net" in text
    assert card.get_attribute("data-pending") == "1"
    shot(page, "queue-stale-decision")
    assert Email.objects.get(pk=email_id).status == EmailStatus.PENDING_SEND_APPROVAL


def test_a_banner_shows_while_the_account_cannot_send(page, live_server, owner):
    from accounts.actors import Actor
    from accounts.support import support_sending_set

    owner.mailbox.oversight_mode = "gated_send"
    owner.mailbox.save()
    email = held_email(owner.mailbox, subject="Waiting while sending is off")
    support_sending_set(
        actor=Actor.support(owner.account, "sam"), disabled=True, reason="complaint rate too high"
    )
    sign_in_cookie(page, live_server, owner)
    page.goto("/console/")
    banner = page.locator("#sending-banner")
    assert banner.is_visible()
    assert "Sending is disabled for this account: complaint rate too high." in banner.inner_text()
    shot(page, "sending-banner")
    page.locator(f"#email-{email.pk}").get_by_role("button", name="Approve").click()
    page.wait_for_selector(f"#pane-outcome[data-decided='{email.pk}']")
    pane_settled(page)
    outcome = page.locator("#pane-outcome").inner_text()
    assert "Approved, but sending is disabled for this account: complaint rate too high" in outcome
    shot(page, "sending-banner-decided")
    page.goto(f"/console/mailboxes/{owner.mailbox.pk}/emails/{email.pk}")
    assert page.get_by_text("sending_disabled: complaint rate too high").is_visible()
    assert page.locator("#sending-banner").is_visible()
    assert page.get_by_role("button", name="Send it again").is_visible()


# --- Oversight rules editor: type rules, dry-run them (HTMX swaps the table in), save ---

EDITOR_RULES = [
    {
        "name": "strangers",
        "direction": "outbound",
        "match": {"recipients": ["@evil.example"]},
        "action": "refuse",
    }
]


def test_dry_run_then_save_rules(page, live_server, owner):
    for to in ("ann@acme.example", "eve@evil.example"):
        Email.objects.create(
            account=owner.account,
            mailbox=owner.mailbox,
            direction=Direction.OUTBOUND,
            status=EmailStatus.SENT,
            from_address=owner.mailbox.address,
            to=[to],
            subject=f"Hello {to}",
            thread_id=new_id(),
            decided_by="mode",
        )
    sign_in_cookie(page, live_server, owner)
    page.goto(f"/console/mailboxes/{owner.mailbox.pk}")
    page.get_by_role("link", name="Oversight rules").click()
    page.get_by_label("Rules (JSON)").fill(json.dumps(EDITOR_RULES, indent=2))
    page.get_by_role("button", name="Dry run").click()
    page.wait_for_selector("#dry-run >> text=refused by rule 'strangers'")
    # HTMX replaced the table only: the typed rules are still in the editor, unsaved.
    assert "strangers" in page.get_by_label("Rules (JSON)").input_value()
    assert page.locator("tr.differs").count() == 1
    owner.mailbox.refresh_from_db()
    assert owner.mailbox.oversight_rules == []
    assert page.evaluate(A11Y_PROBE) == []
    shot(page, "rules-dry-run")
    page.get_by_role("button", name="Save rules").click()
    page.wait_for_selector("text=Saved 1 rule.")
    owner.mailbox.refresh_from_db()
    assert owner.mailbox.oversight_rules == EDITOR_RULES
    shot(page, "rules-saved")


# --- The stop switch and batch decisions -------------------------------------------------


def _sending_stopped(account: Account) -> bool:
    return Account.objects.get(pk=account.pk).sending_stopped


def test_stop_all_sending_then_resume(page, live_server, owner):
    sign_in_cookie(page, live_server, owner)
    page.goto("/console/")
    page.get_by_role("button", name="Stop all sending").click()
    page.wait_for_url(re.compile(r"/console/sending/stop"))
    assert page.get_by_role("heading", name="Stop all sending?").is_visible()
    assert not _sending_stopped(owner.account)  # nothing happens before the confirmation
    shot(page, "stop-confirm")
    page.locator("#confirm-action").get_by_role("button", name="Stop all sending").click()
    page.wait_for_url(re.compile(r"/console/$"))
    assert _sending_stopped(owner.account)
    banner = page.locator("#sending-banner")
    assert "Sending is stopped by the operator" in banner.inner_text()
    assert page.get_by_role("button", name="Stop all sending").count() == 0
    shot(page, "stopped-banner")

    page.goto("/console/mailboxes")
    assert page.locator("#sending-banner").is_visible()
    page.locator("#sending-banner").get_by_role("button", name="Resume sending").click()
    page.wait_for_url(re.compile(r"/console/sending/resume"))
    page.locator("#confirm-action").get_by_role("button", name="Resume sending").click()
    page.wait_for_url(re.compile(r"/console/$"))
    assert not _sending_stopped(owner.account)
    assert page.locator("#sending-banner").count() == 0
    shot(page, "resumed")


def test_approve_selected_after_confirming_each(page, live_server, owner):
    first = held_email(owner.mailbox, subject="Batch one", to=["one@example.org"])
    second = held_email(owner.mailbox, subject="Batch two", to=["two@example.org"])
    left = held_email(owner.mailbox, subject="Left alone")
    sign_in_cookie(page, live_server, owner)
    page.goto("/console/")
    page.locator(f"#select-{first.pk}").check()
    page.locator(f"#select-{second.pk}").check()
    shot(page, "batch-selected")
    page.get_by_role("button", name="Approve selected").click()
    page.wait_for_url(re.compile(r"/console/queue/batch\?"))
    confirm = page.locator("#confirm-action")
    text = confirm.inner_text()
    for expected in ("Batch one", "one@example.org", "Batch two", "two@example.org"):
        assert expected in text
    assert "Left alone" not in text
    assert Email.objects.get(pk=first.pk).status == EmailStatus.PENDING_SEND_APPROVAL
    shot(page, "batch-confirm")
    mail.outbox.clear()
    confirm.get_by_role("button", name="Approve 2 emails").click()
    page.wait_for_url(re.compile(r"/console/$"))
    assert page.get_by_text("Approved 2 of 2 emails.").is_visible()
    shot(page, "batch-decided")
    for email in (first, second):
        assert Email.objects.get(pk=email.pk).status == EmailStatus.SENT
    assert Email.objects.get(pk=left.pk).status == EmailStatus.PENDING_SEND_APPROVAL


# --- Layout at a laptop's and a phone's size -------------------------------------------

LONG_LINE = "A plain-text line far wider than any phone: " + "word " * 60 + "x" * 120

# Runs in the page: true when ``word`` inside ``selector`` is split across two lines.
WORD_BROKEN = """([selector, word]) => {
  for (const cell of document.querySelectorAll(selector)) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const at = node.textContent.indexOf(word);
      if (at < 0) continue;
      const range = document.createRange();
      range.setStart(node, at);
      range.setEnd(node, at + word.length);
      return range.getClientRects().length !== 1;
    }
  }
  throw new Error('no ' + word + ' in ' + selector);
}"""


@pytest.mark.parametrize(("width", "height", "name"), [(1366, 900, "laptop"), (390, 844, "phone")])
def test_layout_at_laptop_and_phone_sizes(page, live_server, owner, width, height, name):
    page.set_viewport_size({"width": width, "height": height})
    plain = held_email(owner.mailbox, subject="Plain text", html="", text=LONG_LINE)
    held_email(owner.mailbox, subject="Second")
    Domain.objects.create(account=owner.account, domain="mail.averyveryverylongname.example")
    page.goto("/console/login")
    # Room for a whole address in the sign-in field.
    assert page.get_by_label("Email address").bounding_box()["width"] >= min(300, width - 60)
    shot(page, f"layout-login-{name}")
    sign_in_cookie(page, live_server, owner)

    page.goto("/console/")
    badge = page.locator("#pending-badge")
    assert badge.bounding_box()["height"] <= 24
    assert page.title().startswith(f"Queue ({badge.inner_text()})")
    body = page.locator(f"#email-{plain.pk} .email-body")
    assert body.evaluate("el => el.scrollWidth <= el.clientWidth")
    # The whole navigation, open or not, stays within a quarter of the first screen.
    assert page.locator(".topbar").bounding_box()["height"] < height / 4
    # Keyboard hints only where there is a keyboard (and room for them).
    assert page.locator(".shortcuts").is_visible() == (name == "laptop")

    # Mail held while the page is open: the title follows the badge.
    held_email(owner.mailbox, subject="Third")
    # (The page's CSP forbids wait_for_function's eval: wait on the badge, then the title.)
    page.wait_for_selector("#pending-badge:text-is('3')", timeout=15_000)
    assert page.title().startswith("Queue (3)")
    shot(page, f"layout-queue-{name}")

    page.goto("/console/domains")
    assert not page.evaluate(WORD_BROKEN, ["td", "Pending"])
    assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth")
    shot(page, f"layout-domains-{name}")

    AuditEntry.objects.create(
        account=owner.account,
        action="api_key.created",
        resource_type="api_key",
        resource_id=new_id(),
        actor_kind=ActorKind.OPERATOR,
        actor_label=owner.operator.email,
    )
    page.goto("/console/audit")
    assert not page.evaluate(WORD_BROKEN, ["td", "api_key.created"])
    assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth")
    shot(page, f"layout-audit-{name}")

    page.goto("/console/billing")
    radio = page.locator("input[type=radio]").first
    label = page.locator(f"label[for='{radio.get_attribute('id')}']")
    # The radio sits on its label's first line, not on a line of its own above it.
    assert abs(radio.bounding_box()["y"] - label.bounding_box()["y"]) < 12
    shot(page, f"layout-billing-{name}")

    # Every section stays reachable: in the open list on a laptop, behind "Menu" on a phone.
    audit = page.get_by_role("link", name="Audit log")
    if name == "phone":
        assert not audit.is_visible()
        page.locator(".navmenu > summary").click()
    assert audit.is_visible()
    shot(page, f"layout-menu-{name}")
