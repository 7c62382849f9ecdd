"""Managing the account in a real browser, at a laptop's and a phone's size: account
settings, the team, mailboxes and API keys, each flow clicked through, with screenshots
under test-artifacts/manage-*.png."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import Account, ApiKey, Operator
from mailboxes.models import Mailbox
from tests.conftest import Tenant, key_for
from tests.console.test_browser import A11Y_PROBE, ARTIFACTS, browser, page, sign_in_cookie

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
__all__ = ["browser", "page"]  # test_browser's fixtures, used here

SIZES = {"laptop": (1366, 900), "phone": (390, 844)}


@pytest.fixture(params=sorted(SIZES))
def sized_page(request: Any, page: Any) -> tuple[Any, str]:
    """test_browser's page (it fails the test on any script error or 4xx/5xx), resized."""
    width, height = SIZES[request.param]
    page.set_viewport_size({"width": width, "height": height})
    return page, request.param


def shot(page: Any, name: str, size: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"manage-{name}-{size}.png"), full_page=True)


def open_section(page: Any, name: str) -> None:
    """Follow the navigation link, opening the menu where it folds (phones)."""
    link = page.locator(".mainnav").get_by_role("link", name=name, exact=True)
    if not link.is_visible():
        page.locator(".navmenu > summary").click()
    link.click()


def check_page(page: Any) -> None:
    assert page.evaluate(A11Y_PROBE) == [], page.url


def test_account_settings(sized_page: tuple[Any, str], live_server: Any, owner: Tenant) -> None:
    page, size = sized_page
    sign_in_cookie(page, live_server, owner)
    page.goto("/console/")
    open_section(page, "Account")
    page.wait_for_url(re.compile(r"/console/account$"))
    page.get_by_label("Account name").fill("Acme Robotics")
    page.get_by_label("Postal address").fill("1 Main St\nSpringfield")
    page.get_by_label("Held emails expire after (hours)").fill("48")
    page.get_by_role("button", name="Save settings").click()
    feedback = page.locator("#settings .feedback")
    assert feedback.inner_text() == "Settings saved."
    # The outcome is beside the form, in sight where the button was.
    assert feedback.is_visible()
    account = Account.objects.get(pk=owner.account.pk)
    assert (account.name, account.approval_expiry_hours) == ("Acme Robotics", 48)
    page.get_by_label("New oversight email").fill(owner.mailbox.address)
    page.get_by_role("button", name="Send confirmation link").click()
    assert page.locator("#oversight-email .errorlist").is_visible()
    page.get_by_label("New oversight email").fill("new-ops@acme.example")
    page.get_by_role("button", name="Send confirmation link").click()
    page.wait_for_selector("text=Waiting for new-ops@acme.example to confirm")
    check_page(page)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download export").click()
    exported = json.loads(Path(download.value.path()).read_text())
    assert exported["account"]["name"] == "Acme Robotics"
    shot(page, "account", size)
    page.get_by_role("link", name="Delete account…").click()
    page.get_by_label("Type the account's name").fill("acme robotics")
    page.get_by_role("button", name="Delete the account").click()
    page.wait_for_selector("text=exactly as shown")
    check_page(page)
    shot(page, "account-delete", size)
    page.get_by_label("Type the account's name").fill("Acme Robotics")
    page.get_by_role("button", name="Delete the account").click()
    page.wait_for_url(re.compile(r"/console/login"))
    assert page.get_by_text("Acme Robotics and all its data are deleted.").is_visible()
    assert not Account.objects.filter(pk=owner.account.pk).exists()


def test_team(sized_page: tuple[Any, str], live_server: Any, owner: Tenant) -> None:
    page, size = sized_page
    Operator.objects.filter(pk=owner.operator.pk).update(last_sign_in_at=timezone.now())
    sign_in_cookie(page, live_server, owner)
    page.goto("/console/")
    open_section(page, "Team")
    page.get_by_label("Email address").fill("colleague@acme.example")
    page.get_by_label("Name").fill("Colleague")
    page.get_by_role("button", name="Invite").click()
    page.wait_for_selector("text=colleague@acme.example is now an operator")
    colleague = Operator.objects.get(account=owner.account, email="colleague@acme.example")
    check_page(page)
    shot(page, "team", size)
    page.get_by_role("link", name="Sign colleague@acme.example out everywhere").click()
    page.get_by_role("button", name="Sign out everywhere").click()
    page.wait_for_selector("text=colleague@acme.example is signed out on every browser.")
    colleague.refresh_from_db()
    assert colleague.sessions_ended_at is not None
    page.get_by_role("button", name="Remove colleague@acme.example").click()
    page.get_by_role("button", name="Remove operator").click()
    page.wait_for_selector("text=colleague@acme.example is no longer an operator.")
    # Yourself, last: the console signs this browser out.
    page.get_by_role("link", name=f"Sign {owner.operator.email} out everywhere").click()
    page.get_by_role("button", name="Sign out everywhere").click()
    page.wait_for_url(re.compile(r"/console/login"))
    page.goto("/console/operators")
    page.wait_for_url(re.compile(r"/console/login"))


def test_mailboxes(sized_page: tuple[Any, str], live_server: Any, owner: Tenant) -> None:
    page, size = sized_page
    sign_in_cookie(page, live_server, owner)
    page.goto("/console/")
    open_section(page, "Mailboxes")
    page.get_by_label("Address").fill(owner.mailbox.address.split("@")[0])
    page.get_by_role("button", name="Create mailbox").click()
    assert page.locator("#create .errorlist").inner_text().startswith("Another mailbox")
    page.get_by_label("Address").fill("sales")
    page.get_by_label("Display name").fill("Sales desk")
    page.get_by_role("button", name="Create mailbox").click()
    page.wait_for_selector("text=is created in Gated: outbound mode")
    created = Mailbox.objects.get(account=owner.account, display_name="Sales desk")
    assert page.get_by_role("heading", name=created.address).is_visible()
    check_page(page)
    shot(page, "mailbox", size)
    page.get_by_role("link", name="Delete mailbox…").click()
    page.get_by_role("button", name="Delete mailbox").click()
    page.wait_for_selector(f"text={created.address} is deleted.")
    created.refresh_from_db()
    assert not created.is_active
    check_page(page)
    shot(page, "mailboxes", size)


def test_keys(sized_page: tuple[Any, str], live_server: Any, owner: Tenant) -> None:
    page, size = sized_page
    used, _ = key_for(owner.account, "read", "send")
    ApiKey.objects.filter(pk=used.pk).update(name="Agent key", last_used_at=timezone.now())
    old, _ = key_for(owner.account, "oversight")
    ApiKey.objects.filter(pk=old.pk).update(name="Old key")
    sign_in_cookie(page, live_server, owner)
    page.goto("/console/")
    open_section(page, "API keys")
    page.get_by_role("link", name="Revoke key Old key").click()
    page.get_by_role("button", name="Revoke key", exact=True).click()
    page.wait_for_selector("text=is revoked")
    assert page.get_by_role("cell", name="Old key").count() == 0
    page.get_by_role("link", name="show revoked keys").click()
    assert page.get_by_role("cell", name="Old key").is_visible()
    assert page.get_by_role("cell", name="read, send").is_visible()
    check_page(page)
    shot(page, "keys", size)
