"""Every console page, at a laptop's and a phone's size, through axe-core: no serious or
critical violation. Each visit leaves a full-page screenshot in test-artifacts/.

One browser for the module and two contexts reused by every test (signed in, and not).
To cover a new page, add one line to PAGES.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe

from accounts.models import ActorKind, AuditEntry
from accounts.services import api_key_create
from mailboxes.lifecycle import email_hold
from mailboxes.models import (
    Direction,
    Domain,
    Email,
    EmailStatus,
    Suppression,
    WebhookDelivery,
    WebhookSubscription,
)
from tests.conftest import Tenant
from tests.console.conftest import held_email, pending_account, signed_in
from tests.console.test_browser import ARTIFACTS, browser  # noqa: F401 (the module's browser)
from tests.console.test_pages import _pending_request
from tests.oversight.conftest import last_token

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

VIEWPORTS = {"laptop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}
# axe-core's impact levels that fail the test; "minor" and "moderate" are reported only.
FAILING_IMPACTS = {"serious", "critical"}
# The operator's browser is in another zone than the server: the pages show local times.
BROWSER_TIME_ZONE = "Europe/Berlin"


@dataclass(frozen=True)
class World:
    """What the pages show: one of each thing an operator manages, with its ids."""

    tenant: Tenant
    held: Email
    domain: Domain
    webhook: WebhookSubscription
    delivery: WebhookDelivery
    approval_token: str
    activation_code: str


def _world(tenant: Tenant, capture_on_commit: Any) -> World:
    account, mailbox = tenant.account, tenant.mailbox
    mailbox.oversight_mode = "gated_send"
    mailbox.save()
    key, _ = api_key_create(account=account, name="Invoicing agent", scopes=["send"])
    held = held_email(
        mailbox,
        subject="Quarterly numbers for the board",
        to=["dana@clientco.example"],
        sent_by_key=key,
        text="Hello Dana,\n\nThe numbers are attached.\n",
    )
    held_email(
        mailbox,
        direction=Direction.INBOUND,
        status=EmailStatus.READ,
        subject="Re: Quarterly numbers",
        thread_id=held.thread_id,
    )
    with capture_on_commit(execute=True):
        email_hold(email=held_email(mailbox, subject="Held for the hosted page"))
    domain = Domain.objects.create(account=account, domain="mail.acme-corp.example")
    webhook = WebhookSubscription.objects.create(
        account=account,
        url="https://hooks.acme.example/multimail",
        events=["message.received"],
        signing_secret="whsec_" + "a" * 32,
    )
    delivery = WebhookDelivery.objects.create(
        account=account,
        subscription=webhook,
        event_type="message.received",
        url=webhook.url,
        status=WebhookDelivery.Status.FAILED,
        attempts=3,
        last_error="HTTP 500",
    )
    Suppression.objects.create(account=account, email_address="gone@x.example", reason="manual")
    AuditEntry.objects.create(
        account=account,
        action="api_key.created",
        resource_type="api_key",
        resource_id=key.pk,
        actor_kind=ActorKind.OPERATOR,
        actor_label=tenant.operator.email,
    )
    _pending_request(account)
    _, activation_code = pending_account("newco")
    return World(
        tenant=tenant,
        held=held,
        domain=domain,
        webhook=webhook,
        delivery=delivery,
        approval_token=last_token(),
        activation_code=activation_code,
    )


@dataclass(frozen=True)
class ConsolePage:
    name: str
    path: Callable[[World], str]
    signed_in: bool = True
    # For a page reached by a form rather than a link: what to do after opening ``path``.
    then: Callable[[Any], None] | None = None


def _mailbox(world: World) -> str:
    return f"/console/mailboxes/{world.tenant.mailbox.pk}"


def _activation(world: World) -> str:
    return f"/confirm?code={world.activation_code}"


def _click_revoke(page: Any) -> None:
    page.locator("a", has_text="Revoke").first.click()


def _click_activate(page: Any) -> None:
    page.get_by_role("button", name="Activate").click()


ANONYMOUS = {"signed_in": False}
PAGES = [
    ConsolePage("queue", lambda w: "/console/"),
    ConsolePage("queue-item", lambda w: f"/console/queue/{w.held.pk}"),
    ConsolePage("batch", lambda w: f"/console/queue/batch?action=reject&email_id={w.held.pk}"),
    ConsolePage("stop-sending-confirm", lambda w: "/console/sending/stop"),
    ConsolePage("mailboxes", lambda w: "/console/mailboxes"),
    ConsolePage("mailbox", _mailbox),
    ConsolePage("rules", lambda w: f"{_mailbox(w)}/rules"),
    ConsolePage("email", lambda w: f"{_mailbox(w)}/emails/{w.held.pk}"),
    ConsolePage("thread", lambda w: f"{_mailbox(w)}/threads/{w.held.thread_id}"),
    ConsolePage("keys", lambda w: "/console/keys"),
    ConsolePage("key-revoke-confirm", lambda w: "/console/keys", then=_click_revoke),
    ConsolePage("operators", lambda w: "/console/operators"),
    ConsolePage(
        "sign-out-everywhere-confirm",
        lambda w: f"/console/operators/{w.tenant.operator.pk}/sign-out",
    ),
    ConsolePage("account", lambda w: "/console/account"),
    ConsolePage("account-delete", lambda w: "/console/account/delete"),
    ConsolePage("mailbox-delete-confirm", lambda w: f"{_mailbox(w)}/delete"),
    ConsolePage("audit", lambda w: "/console/audit"),
    ConsolePage("audit-filtered", lambda w: "/console/audit?action=api_key."),
    ConsolePage("approvals", lambda w: "/console/approvals"),
    ConsolePage("domains", lambda w: "/console/domains"),
    ConsolePage("domain", lambda w: f"/console/domains/{w.domain.pk}"),
    ConsolePage("webhooks", lambda w: "/console/webhooks"),
    ConsolePage("webhook", lambda w: f"/console/webhooks/{w.webhook.pk}"),
    ConsolePage(
        "webhook-delivery",
        lambda w: f"/console/webhooks/{w.webhook.pk}/deliveries/{w.delivery.pk}",
    ),
    ConsolePage("suppression", lambda w: "/console/suppression"),
    ConsolePage("suppression-search", lambda w: "/console/suppression?q=x.example"),
    ConsolePage("usage", lambda w: "/console/usage"),
    ConsolePage("billing", lambda w: "/console/billing"),
    ConsolePage("login", lambda w: "/console/login", **ANONYMOUS),
    ConsolePage("login-verify", lambda w: "/console/login/verify?email=a%40b.example", **ANONYMOUS),
    ConsolePage("confirm", _activation, **ANONYMOUS),
    ConsolePage("confirm-done", _activation, then=_click_activate, **ANONYMOUS),
    ConsolePage("welcome", lambda w: "/welcome?session_id=cs_test_a11y", **ANONYMOUS),
    ConsolePage("hosted-approval", lambda w: f"/v1/approve/{w.approval_token}", **ANONYMOUS),
]  # fmt: skip


@pytest.fixture(scope="module")
def contexts(browser: Any, live_server: Any) -> Iterator[dict[bool, Any]]:  # noqa: F811
    """Two contexts for the whole module, by whether they are signed in."""
    made = {
        signed: browser.new_context(base_url=live_server.url, timezone_id=BROWSER_TIME_ZONE)
        for signed in (True, False)
    }
    # The hosted approval page has no script: it shows the zone the console's script stored
    # in this browser (the signed-in context gets it from timezone.js, the first test checks).
    made[False].add_cookies([{"name": "mm_tz", "value": BROWSER_TIME_ZONE, "url": live_server.url}])
    yield made
    for context in made.values():
        context.close()


@pytest.fixture(scope="module")
def axe() -> Axe:
    return Axe()


def _readable(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        lines.append(f"[{violation['impact']}] {violation['id']}: {violation['help']}")
        for node in violation["nodes"][:5]:
            lines.append(f"    at {' '.join(node['target'])}")
            summary = node.get("failureSummary", "").replace("\n", " / ")
            lines.append(f"       {summary}")
    return "\n".join(lines)


def _open(contexts: dict[bool, Any], live_server: Any, owner: Tenant, signed: bool) -> Any:
    context = contexts[signed]
    if signed:
        # The database is emptied between tests: each test signs in again.
        cookie = signed_in(owner).cookies["sessionid"].value
        context.add_cookies([{"name": "sessionid", "value": cookie, "url": live_server.url}])
    else:
        context.clear_cookies(name="sessionid")
    page = context.pages[0] if context.pages else context.new_page()
    page.set_default_timeout(10_000)
    return page


def test_no_page_has_a_serious_accessibility_violation(
    contexts, axe, live_server, owner, django_capture_on_commit_callbacks
):
    # One test for every page: the live server's database is emptied after each test,
    # which costs more than checking a page, so the pages share one set of data.
    world = _world(owner, django_capture_on_commit_callbacks)
    # The first console page stores the browser's zone; from the next one on, times are local.
    page = _open(contexts, live_server, owner, True)
    page.goto("/console/audit")
    page.reload()
    assert page.locator("#time-zone").inner_text() == BROWSER_TIME_ZONE
    assert page.locator("td time").first.get_attribute("title").endswith(" UTC")
    found = []
    for console_page in PAGES:
        page = _open(contexts, live_server, owner, console_page.signed_in)
        response = page.goto(console_page.path(world))
        assert response is not None
        assert response.ok, (console_page.name, response.status)
        if console_page.then is not None:
            console_page.then(page)
            page.wait_for_load_state()
        # Opened once, checked at both sizes: the layout follows the viewport, and a page
        # reached by a one-time form (an activation) cannot be reached twice.
        for size, viewport in VIEWPORTS.items():
            page.set_viewport_size(viewport)
            page.screenshot(
                path=str(ARTIFACTS / f"page-{console_page.name}-{size}.png"), full_page=True
            )
            violations = axe.run(page).response["violations"]
            failing = [v for v in violations if v["impact"] in FAILING_IMPACTS]
            if failing:
                found.append(f"{console_page.name} at {size}:\n{_readable(failing)}")
    assert not found, "\n".join(found)


# Runs in the page: whether the focused element shows a focus indicator a person can see.
FOCUS_SHOWN = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  const outline = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2;
  const ring = style.boxShadow && style.boxShadow !== 'none';
  const label = (el.textContent || '').trim().slice(0, 30);
  return {what: el.tagName + (el.id ? '#' + el.id : '') + ' ' + label, shown: outline || ring};
}"""


# The pages whose every keyboard stop is visited: the queue (decisions), a mailbox (forms,
# filters, settings), the sign-in form and the hosted approval page (its own stylesheet).
KEYBOARD_PAGES = ("queue", "mailbox", "login", "hosted-approval")


def test_every_keyboard_stop_shows_focus(
    contexts, live_server, owner, django_capture_on_commit_callbacks
):
    world = _world(owner, django_capture_on_commit_callbacks)
    unseen = []
    for console_page in (p for p in PAGES if p.name in KEYBOARD_PAGES):
        page = _open(contexts, live_server, owner, console_page.signed_in)
        for size, viewport in VIEWPORTS.items():
            page.set_viewport_size(viewport)
            page.goto(console_page.path(world))
            # The hosted page is one form with nothing to skip; the sign-in page puts the
            # cursor in its field. Elsewhere the first stop is the skip link to the content.
            # Chromium focuses an [autofocus] field at a rendering step after the load
            # event, so the test waits for it rather than reading the focus at once.
            autofocused = page.evaluate("document.querySelector('[autofocus]') !== null")
            if autofocused:
                page.wait_for_function(
                    "document.activeElement === document.querySelector('[autofocus]')"
                )
            if console_page.name != "hosted-approval" and not autofocused:
                page.keyboard.press("Tab")
                first = page.evaluate("document.activeElement.outerHTML.slice(0, 80)")
                assert "skip-link" in first, (console_page.name, size, first)
                page.keyboard.press("Enter")
                assert page.evaluate("document.activeElement.id") == "main"
            stops = 0
            for _ in range(60):
                page.keyboard.press("Tab")
                focus = page.evaluate(FOCUS_SHOWN)
                if focus is None:  # past the last stop
                    break
                stops += 1
                if not focus["shown"]:
                    unseen.append(f"{console_page.name} at {size}: {focus['what']}")
                if stops == 2:
                    page.screenshot(path=str(ARTIFACTS / f"focus-{console_page.name}-{size}.png"))
            assert stops >= 2, (console_page.name, size)
    assert unseen == []
