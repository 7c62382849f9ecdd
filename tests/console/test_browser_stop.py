"""The stop switch in a real browser: the queue's button, its confirmation, the banner while
sending is stopped, and resuming from the banner."""

from __future__ import annotations

import re

import pytest

from accounts.models import Account
from tests.console.test_browser import browser, page, shot, sign_in_cookie  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _stopped(account: Account) -> bool:
    return Account.objects.get(pk=account.pk).sending_stopped


def test_stop_all_sending_then_resume(page, live_server, owner):  # noqa: F811
    sign_in_cookie(page, live_server, owner)
    page.goto("/console/")
    page.get_by_role("button", name="Stop all sending").click()
    page.wait_for_url(re.compile(r"/console/sending/stop"))
    assert page.get_by_role("heading", name="Stop all sending?").is_visible()
    assert not _stopped(owner.account)  # nothing happens before the confirmation
    shot(page, "stop-confirm")
    page.locator("#confirm-action").get_by_role("button", name="Stop all sending").click()
    page.wait_for_url(re.compile(r"/console/$"))
    assert _stopped(owner.account)
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
    assert not _stopped(owner.account)
    assert page.locator("#sending-banner").count() == 0
    shot(page, "resumed")
