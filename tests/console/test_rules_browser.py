"""The oversight rules editor in a real browser: type rules, dry-run them (HTMX swaps the
table in), save; the page stays accessible on a phone and free of CSP errors."""

from __future__ import annotations

import json

import pytest

from mailboxes.models import Direction, Email, EmailStatus
from multimail.ids import new_id
from tests.console.test_browser import A11Y_PROBE, browser, page, shot, sign_in_cookie

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
__all__ = ["browser", "page"]  # the fixtures this module borrows

RULES = [
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
    page.get_by_label("Rules (JSON)").fill(json.dumps(RULES, indent=2))
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
    assert owner.mailbox.oversight_rules == RULES
    shot(page, "rules-saved")
