"""Decisions are bound to the version the operator saw, and edits re-open them.

The hole these close: an agent sends a scheduled email from a gated mailbox, the operator is
told, then the agent changes its recipients, Bcc, subject and body with PATCH .../schedule.
Before, no new notification went out and the old link, the console card and the decide API
all approved the new content. Each path is driven through HTTP here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.test import Client, TestCase
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AuditEntry
from mailboxes.models import Email, EmailStatus, WebhookDelivery, WebhookEvent
from mailboxes.services.rendering import markdown_render
from mailboxes.tasks import send_due_scheduled
from mailboxes.versions import email_version_read
from oversight.models import ApprovalLink, OperatorNotification
from tests.conftest import Tenant, assert_error
from tests.console.conftest import card_version, signed_in
from tests.oversight.conftest import TOKEN_IN_LINK, hosted_decision, shown_version

pytestmark = pytest.mark.django_db

EDIT = {
    "to": ["someone-else@example.net"],
    "bcc": ["hidden@example.net"],
    "subject": "Updated numbers",
    "markdown": "Revenue is **down** after all.",
}
CHANGED_SUBJECT = "[MultiMail] Changed (To, Bcc, Subject, Body), waiting for approval again: "


@pytest.fixture
def gated(owner: Tenant) -> Tenant:
    owner.mailbox.oversight_mode = "gated_send"
    owner.mailbox.oversight_webhook_url = "https://hooks.example/oversight"
    owner.mailbox.save()
    return owner


@pytest.fixture
def agent(api: Any) -> APIClient:
    return api("send", "read")


def _later(hours: int = 2) -> str:
    return (timezone.now() + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def send_scheduled(agent: APIClient, tenant: Tenant) -> Email:
    """A gate_first scheduled email: held at once, the operator notified."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = agent.post(
            f"/v1/mailboxes/{tenant.mailbox.pk}/send",
            {
                "to": ["client@example.org"],
                "subject": "Quarterly numbers",
                "markdown": "Revenue is **up**.",
                "send_at": _later(),
                "gate_timing": "gate_first",
            },
            format="json",
        )
    assert response.status_code == 202, response.content
    email = Email.objects.get(pk=response.json()["id"])
    assert email.status == EmailStatus.PENDING_SEND_APPROVAL
    return email


def edit(agent: APIClient, tenant: Tenant, email: Email, changes: dict[str, Any]) -> Any:
    with TestCase.captureOnCommitCallbacks(execute=True):
        return agent.patch(
            f"/v1/mailboxes/{tenant.mailbox.pk}/emails/{email.pk}/schedule",
            changes,
            format="json",
        )


def notices() -> list[Any]:
    return [m for m in mail.outbox if m.extra_headers.get("X-MultiMail-Notification")]


def token_of(message: Any) -> str:
    found = TOKEN_IN_LINK.search(message.body)
    assert found is not None
    return found.group(1)


def test_an_edit_keeps_it_held_and_tells_the_operator_what_changed(
    gated: Tenant, agent: APIClient
) -> None:
    email = send_scheduled(agent, gated)
    assert len(notices()) == 1

    response = edit(agent, gated, email, EDIT)
    assert response.status_code == 200, response.content
    email.refresh_from_db()
    assert email.status == EmailStatus.PENDING_SEND_APPROVAL
    assert email.approved_at is None
    first, second = notices()
    assert second.subject == CHANGED_SUBJECT + "Updated numbers"
    assert "This email changed after you were asked about it: To, Bcc, Subject, Body." in (
        second.body
    )
    for shown in ("someone-else@example.net", "hidden@example.net", "Updated numbers", "down"):
        assert shown in second.body, shown
    assert token_of(first) != token_of(second)
    # The agent's oversight webhook hears that it waits again, and what changed.
    events = WebhookDelivery.objects.filter(event_type=WebhookEvent.OVERSIGHT_PENDING)
    assert [event.payload["data"].get("changed") for event in events.order_by("id")] == [
        None,
        ["To", "Bcc", "Subject", "Body"],
    ]

    # Moving only the send time is a change too; an edit that changes nothing is not.
    assert edit(agent, gated, email, {"send_at": _later(hours=5)}).status_code == 200
    assert notices()[-1].subject.startswith("[MultiMail] Changed (Send time), ")
    assert edit(agent, gated, email, {"subject": "Updated numbers"}).status_code == 200
    assert len(notices()) == 3


def test_the_old_hosted_link_says_it_was_replaced_and_decides_nothing(
    gated: Tenant, agent: APIClient
) -> None:
    email = send_scheduled(agent, gated)
    old_token = token_of(notices()[-1])
    browser = Client()
    seen = shown_version(browser.get(f"/v1/approve/{old_token}").content.decode())
    assert seen

    assert edit(agent, gated, email, EDIT).status_code == 200
    new_notice = notices()[-1]

    page = browser.get(f"/v1/approve/{old_token}")
    html = page.content.decode()
    assert page.status_code == 410
    assert "This link was replaced" in html
    assert "To, Bcc, Subject, Body" in html
    assert "Changed (To, Bcc, Subject, Body), waiting for approval again: Updated numbers" in html
    assert gated.account.oversight_email in html
    assert 'name="action"' not in html  # no form: nothing to decide here

    refused = hosted_decision(browser, old_token, action="approve", version=seen)
    assert refused.status_code == 410
    assert "This link was replaced" in refused.content.decode()
    email.refresh_from_db()
    assert email.status == EmailStatus.PENDING_SEND_APPROVAL
    assert not AuditEntry.objects.filter(action="email.approved").exists()
    assert ApprovalLink.objects.get(email=email, replaced_at__isnull=False).replaced_by_id

    # The link in the new notification shows the new content and decides it.
    new_token = token_of(new_notice)
    assert "Updated numbers" in browser.get(f"/v1/approve/{new_token}").content.decode()
    approved = hosted_decision(browser, new_token, action="approve")
    assert approved.status_code == 200, approved.content
    email.refresh_from_db()
    assert email.status == EmailStatus.SCHEDULED
    assert email.approved_version == email_version_read(email=email)


def test_a_hosted_page_opened_before_an_edit_decides_nothing(
    gated: Tenant, agent: APIClient
) -> None:
    """Even a page whose link still works decides only the version it showed."""
    email = send_scheduled(agent, gated)
    token = token_of(notices()[-1])
    browser = Client()
    seen = shown_version(browser.get(f"/v1/approve/{token}").content.decode())
    # A change no edit path re-announces would leave this link working: the version
    # still refuses the stale page.
    Email.objects.filter(pk=email.pk).update(subject="Changed behind the page")
    page = hosted_decision(browser, token, action="approve", version=seen)
    html = page.content.decode()
    assert page.status_code == 409
    assert "This email changed after this page was loaded, so nothing was decided" in html
    assert "Changed behind the page" in html
    assert shown_version(html) != seen
    email.refresh_from_db()
    assert email.status == EmailStatus.PENDING_SEND_APPROVAL


def test_an_old_console_card_decides_nothing_and_shows_the_current_version(
    gated: Tenant, agent: APIClient
) -> None:
    email = send_scheduled(agent, gated)
    console = signed_in(gated)
    seen = card_version(console, email)
    assert edit(agent, gated, email, EDIT).status_code == 200

    # The live queue notices the change: its fingerprint moved.
    first = console.get("/console/", headers={"HX-Request": "true"}).content.decode()
    fingerprint = first.split("?v=")[1].split('"')[0]
    assert edit(agent, gated, email, {"markdown": "Revenue is **flat**."}).status_code == 200
    polled = console.get(f"/console/?v={fingerprint}", headers={"HX-Request": "true"})
    assert polled.status_code == 200
    assert f'id="row-{email.pk}"' in polled.content.decode()
    # Opening it in the review pane shows it as it is now.
    pane = console.get(f"/console/queue/{email.pk}", headers={"HX-Request": "true"})
    assert "flat" in pane.content.decode()

    swapped = console.post(
        f"/console/queue/{email.pk}/decide",
        {"action": "approve", "version": seen},
        headers={"HX-Request": "true"},
    )
    html = swapped.content.decode()
    assert swapped.status_code == 200
    assert "This email changed after you opened it, so nothing was decided" in html
    assert "Updated numbers" in html
    assert "someone-else@example.net" in html
    assert 'data-pending="1"' in html  # still in the queue, to decide again
    assert shown_version(html) not in ("", seen)

    # Without JavaScript: back to the queue, with the same notice.
    plain = console.post(
        f"/console/queue/{email.pk}/decide", {"action": "approve", "version": seen}, follow=True
    )
    assert "This email changed after you opened it" in plain.content.decode()
    # From the email page: back to the email page, showing the current version.
    page_url = f"/console/mailboxes/{gated.mailbox.pk}/emails/{email.pk}"
    from_page = console.post(
        f"/console/queue/{email.pk}/decide",
        {"action": "reject", "version": seen, "from": "email", "mailbox_id": gated.mailbox.pk},
        follow=True,
    )
    assert from_page.redirect_chain[-1][0] == page_url
    assert "This email changed after you opened it" in from_page.content.decode()
    email.refresh_from_db()
    assert email.status == EmailStatus.PENDING_SEND_APPROVAL
    assert email.approved_by is None

    # The email page's own form decides the version it shows.
    current = shown_version(console.get(page_url).content.decode())
    with TestCase.captureOnCommitCallbacks(execute=True):
        decided = console.post(
            f"/console/queue/{email.pk}/decide",
            {
                "action": "reject",
                "version": current,
                "from": "email",
                "mailbox_id": gated.mailbox.pk,
            },
            follow=True,
        )
    assert "Rejected: it will never be sent." in decided.content.decode()
    email.refresh_from_db()
    assert email.status == EmailStatus.REJECTED


def test_edits_after_approval_stay_refused(gated: Tenant, agent: APIClient) -> None:
    email = send_scheduled(agent, gated)
    assert hosted_decision(Client(), token_of(notices()[-1]), action="approve").status_code == 200
    for change in (EDIT, {"send_at": _later(hours=9)}):
        assert_error(edit(agent, gated, email, change), "conflict")
    email.refresh_from_db()
    assert email.subject == "Quarterly numbers"
    assert len(notices()) == 1


def test_a_sender_setting_change_re_opens_held_mail(gated: Tenant, api: Any) -> None:
    """The mailbox's display name goes into every message it sends: its held mail reads
    differently after a change, so the operator is asked again."""
    held_one = send_scheduled(api("send"), gated)
    old_token = token_of(notices()[-1])
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = api("admin").patch(
            f"/v1/mailboxes/{gated.mailbox.pk}",
            {"display_name": "Totally Legit Bank"},
            format="json",
        )
    assert response.status_code == 200, response.content
    assert notices()[-1].subject == (
        "[MultiMail] Changed (Sender name), waiting for approval again: Quarterly numbers"
    )
    assert Client().get(f"/v1/approve/{old_token}").status_code == 410
    held_one.refresh_from_db()
    assert held_one.status == EmailStatus.PENDING_SEND_APPROVAL


def test_delivery_sends_only_the_approved_version(gated: Tenant, agent: APIClient) -> None:
    """Whatever path might change an approved email, delivery compares it with the version
    the operator approved and sends nothing that differs."""
    email = send_scheduled(agent, gated)
    assert hosted_decision(Client(), token_of(notices()[-1]), action="approve").status_code == 200
    mail.outbox.clear()
    Email.objects.filter(pk=email.pk).update(
        subject="Not what was approved", send_at=timezone.now() - timedelta(seconds=1)
    )
    with TestCase.captureOnCommitCallbacks(execute=True):
        send_due_scheduled()
    email.refresh_from_db()
    assert email.status == EmailStatus.SEND_FAILED
    assert email.failure_reason.startswith("changed_after_approval:")
    assert [m.subject for m in mail.outbox] == ["[MultiMail] Not sent: Not what was approved"]
    assert OperatorNotification.objects.filter(
        email=email, kind=OperatorNotification.Kind.SEND_FAILED
    ).exists()


DECIDE = "/v1/oversight/decide"


def test_the_api_refuses_a_decision_on_an_old_version(
    gated: Tenant, agent: APIClient, api: Any
) -> None:
    email = send_scheduled(agent, gated)
    overseer = api("oversight")
    [read] = overseer.get("/v1/oversight/pending").json()["emails"]
    assert read["version"]
    assert edit(agent, gated, email, EDIT).status_code == 200

    with TestCase.captureOnCommitCallbacks(execute=True):
        refused = overseer.post(
            DECIDE,
            {"email_id": email.pk, "action": "approve", "version": read["version"]},
            format="json",
        )
    error = assert_error(refused, "conflict")
    assert "changed since you read it" in error["message"]
    assert "Read it again" in error["message"]
    email.refresh_from_db()
    assert email.status == EmailStatus.PENDING_SEND_APPROVAL
    assert not AuditEntry.objects.filter(action__startswith="email.").exists()

    [again] = overseer.get("/v1/oversight/pending").json()["emails"]
    assert again["version"] != read["version"]
    assert again["subject"] == "Updated numbers"
    with TestCase.captureOnCommitCallbacks(execute=True):
        decided = overseer.post(
            DECIDE,
            {"email_id": email.pk, "action": "approve", "version": again["version"]},
            format="json",
        )
    assert decided.status_code == 200, decided.content
    assert decided.json()["status"] == "approved"  # gate_first: it waits for send_at
    entry = AuditEntry.objects.get(action="email.approved", resource_id=email.pk)
    assert entry.metadata["version"] == again["version"]


def _sent_copy() -> Any:
    [sent] = [m for m in mail.outbox if not m.extra_headers.get("X-MultiMail-Notification")]
    return sent


def _assert_sent_as_approved(sent: Any, approved: dict[str, Any], sender: str) -> None:
    """The message recipients get, as the outbound backend was handed it, against the
    content the operator approved (the pending API's view of that version)."""
    raw = sent.message()
    assert raw["From"] == sender
    assert raw["Subject"] == approved["subject"]
    assert raw["To"] == ", ".join(approved["to"])
    assert raw["Cc"] is None
    assert raw["Bcc"] is None  # never a header
    assert sent.bcc == approved["bcc"]
    assert sent.recipients() == [*approved["to"], *approved["bcc"]]
    text = next(
        part.get_content() for part in raw.walk() if part.get_content_type() == "text/plain"
    )
    # The plain-text part is the approved markdown rendered as readable text.
    assert text.startswith(markdown_render(markdown=approved["body_markdown"]).text.rstrip())


def test_what_is_sent_is_exactly_the_edited_version_approved(
    gated: Tenant, agent: APIClient, api: Any
) -> None:
    email = send_scheduled(agent, gated)
    assert edit(agent, gated, email, EDIT).status_code == 200
    overseer = api("oversight")
    [approved] = overseer.get("/v1/oversight/pending").json()["emails"]
    with TestCase.captureOnCommitCallbacks(execute=True):
        overseer.post(
            DECIDE,
            {"email_id": email.pk, "action": "approve", "version": approved["version"]},
            format="json",
        )
    mail.outbox.clear()
    # The clock reaching send_at, stood in for by moving send_at back: the operator approved
    # this email at its send time, so its approved version moves with it, and nothing else.
    Email.objects.filter(pk=email.pk).update(send_at=timezone.now() - timedelta(seconds=1))
    moved = Email.objects.select_related("mailbox").get(pk=email.pk)
    Email.objects.filter(pk=email.pk).update(approved_version=email_version_read(email=moved))
    with TestCase.captureOnCommitCallbacks(execute=True):
        send_due_scheduled()
    email.refresh_from_db()
    assert email.status == EmailStatus.SENT
    _assert_sent_as_approved(_sent_copy(), approved, sender=gated.mailbox.address)


def test_what_is_sent_carries_the_sender_name_approved(gated: Tenant, api: Any) -> None:
    """An email sent at once, re-opened by a change of its mailbox's display name: the
    operator approves the new version, and recipients see exactly that sender."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = api("send").post(
            f"/v1/mailboxes/{gated.mailbox.pk}/send",
            {"to": ["client@example.org"], "bcc": ["audit@example.org"], "subject": "Hello",
             "markdown": "Plain words."},
            format="json",
        )  # fmt: skip
    email = Email.objects.get(pk=response.json()["id"])
    with TestCase.captureOnCommitCallbacks(execute=True):
        api("admin").patch(
            f"/v1/mailboxes/{gated.mailbox.pk}", {"display_name": "Acme Billing"}, format="json"
        )
    overseer = api("oversight")
    [approved] = overseer.get("/v1/oversight/pending").json()["emails"]
    page = hosted_decision(Client(), token_of(notices()[-1]), action="approve")
    assert page.status_code == 200, page.content
    email.refresh_from_db()
    assert email.status == EmailStatus.SENT
    assert email.approved_version == approved["version"]
    _assert_sent_as_approved(
        _sent_copy(), approved, sender=f"Acme Billing <{gated.mailbox.address}>"
    )
