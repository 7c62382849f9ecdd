"""Batch decisions in the console: select boxes, "approve selected" / "reject selected", and
a confirmation listing each email's recipients and subject before anything is decided."""

from __future__ import annotations

import re

from django.test import Client, TestCase

from mailboxes.models import EmailStatus
from tests.conftest import Tenant
from tests.console.conftest import held_email


def test_select_confirm_then_decide(owner: Tenant, console: Client) -> None:
    first = held_email(owner.mailbox, subject="First one", to=["a@example.org"], cc=["c@x.org"])
    second = held_email(owner.mailbox, subject="Second one", bcc=["hidden@example.org"])
    untouched = held_email(owner.mailbox, subject="Not selected")
    queue = console.get("/console/").content.decode()
    assert 'id="approve-selected"' in queue
    assert queue.count('class="select-email"') == 3

    asked = console.post(
        "/console/queue/batch", {"action": "reject", "email_id": [first.pk, second.pk]}
    )
    assert asked.status_code == 302
    page = console.get(asked["Location"]).content.decode()
    assert "Reject 2 emails?" in page
    for text in ("First one", "a@example.org", "c@x.org", "Second one", "hidden@example.org"):
        assert text in page
    assert "Not selected" not in page
    for email in (first, second):
        email.refresh_from_db()
        assert email.status == EmailStatus.PENDING_SEND_APPROVAL  # nothing decided yet

    fields = re.findall(r'<input type="hidden" name="([\w]+)" value="([^"]*)">', page)
    data: dict[str, list[str]] = {}
    for name, value in fields:
        data.setdefault(name, []).append(value)
    data.pop("csrfmiddlewaretoken", None)
    with TestCase.captureOnCommitCallbacks(execute=True):
        done = console.post("/console/queue/batch", data, follow=True)
    assert "Rejected 2 of 2 emails." in done.content.decode()
    for email in (first, second):
        email.refresh_from_db()
        assert email.status == EmailStatus.REJECTED
    untouched.refresh_from_db()
    assert untouched.status == EmailStatus.PENDING_SEND_APPROVAL


def test_an_email_changed_since_the_confirmation_is_not_decided(
    owner: Tenant, console: Client
) -> None:
    email = held_email(owner.mailbox, subject="Will change")
    response = console.post(
        "/console/queue/batch",
        {
            "action": "approve",
            "email_id": [email.pk],
            "version_" + email.pk: "old",
            "confirmed": "yes",
        },
        follow=True,
    )
    assert "Approved" not in response.content.decode().split("<main", 1)[1].split("</ul>", 1)[0]
    email.refresh_from_db()
    assert email.status == EmailStatus.PENDING_SEND_APPROVAL


def test_nothing_selected_goes_back_to_the_queue(console: Client) -> None:
    response = console.post("/console/queue/batch", {"action": "approve"}, follow=True)
    assert "Select at least one email first." in response.content.decode()
