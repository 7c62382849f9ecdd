"""The usage page: every metric the plan limits, against its limit, in text and a bar."""

from __future__ import annotations

import re

from mailboxes.models import Direction, EmailStatus, Mailbox, WebhookSubscription
from mailboxes.quotas import storage_add
from tests.conftest import key_for
from tests.console.conftest import held_email


def _metric(body: str, label: str) -> str:
    """The text of one metric's list item."""
    match = re.search(
        rf'<span class="meter-label"[^>]*>{re.escape(label)}</span>(.*?)</li>', body, re.S
    )
    assert match, label
    return match.group(1)


def test_every_limited_metric_is_shown_against_its_limit(owner, other, console):
    # Starter: 2 mailboxes, 200 sends, 100 MB, no domains, 2 webhooks, 10 keys.
    held_email(owner.mailbox, status=EmailStatus.SENT, direction=Direction.OUTBOUND)
    held_email(owner.mailbox, status=EmailStatus.SENT, direction=Direction.OUTBOUND)
    Mailbox.objects.create(account=owner.account, address="second@acme.multimail.localhost")
    WebhookSubscription.objects.create(
        account=owner.account, url="https://hooks.example/x", events=["message.sent"]
    )
    key_for(owner.account, "read")
    storage_add(account_id=owner.account.pk, delta=25 * 1024 * 1024)
    # Another tenant's things never count here.
    for index in range(3):
        Mailbox.objects.create(account=other.account, address=f"o{index}@other.multimail.localhost")
    body = console.get("/console/usage").content.decode()
    assert "Against the Starter plan's limits" in body
    assert "2 of 200 · 1%" in _metric(body, "Emails sent this period")
    mailboxes = _metric(body, "Mailboxes")
    assert "2 of 2 · 100%" in mailboxes
    assert "limit reached" in mailboxes
    assert "25.0\xa0MB of 100.0\xa0MB · 25%" in _metric(body, "Storage")
    assert "0 (none included)" in _metric(body, "Custom domains")
    assert "1 of 2 · 50%" in _metric(body, "Webhooks")
    assert "1 of 10 · 10%" in _metric(body, "Active API keys")
    # A bar for each, whose text says the same for those who do not see colour.
    assert body.count("<meter") == 6
    assert re.search(r'<meter[^>]*value="100"[^>]*>100%</meter>', mailboxes)
