"""The pending queue: listing, rendering, inline decisions, polling, shortcuts' hooks."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import AuditEntry
from mailboxes.models import Attachment, Direction, EmailStatus
from oversight.selectors import QUEUE_PAGE_SIZE
from tests.console.conftest import card_version, held_email


def test_queue_lists_held_mail_with_details(owner, console):
    email = held_email(owner.mailbox, subject="Invoice for March")
    Attachment.objects.create(
        email=email, filename="invoice.pdf", content_type="application/pdf", size=2048, content=b"x"
    )
    inbound = held_email(owner.mailbox, direction=Direction.INBOUND, subject="Hello from outside")
    page = console.get("/console/")
    body = page.content.decode()
    assert page.status_code == 200
    assert "Invoice for March" in body
    assert "Hello from outside" in body
    assert "client@outside.example" in body
    assert owner.mailbox.address in body
    assert "invoice.pdf" in body
    assert "<b>there</b>" in body  # rendered, sanitized HTML
    # Both are listed; the oldest is open in the pane beside the list.
    assert f'id="row-{inbound.pk}"' in body
    assert f'id="email-{email.pk}"' in body
    assert 'id="pending-badge"' in body
    assert ">2</span>" in body
    # CSP: no inline script anywhere, htmx from the django-htmx package.
    assert "<script>" not in body
    assert "/static/django_htmx/htmx-2.min.js" in body
    assert "script-src 'self'" in page["Content-Security-Policy"]


def test_queue_sanitizes_and_blocks_remote_images(owner, console):
    email = held_email(
        owner.mailbox,
        direction=Direction.INBOUND,
        html='<p onclick="x()">Hi<script>alert(1)</script>'
        '<img src="https://tracker.example/p.gif" alt="<b>logo</b>"></p>',
    )
    body = console.get("/console/").content.decode()
    assert "alert(1)" not in body
    assert "onclick" not in body
    assert "tracker.example" not in body
    assert "[remote image: &lt;b&gt;logo&lt;/b&gt;]" in body
    assert f"/console/queue/{email.pk}?images=1" in body
    loaded = console.get(f"/console/queue/{email.pk}?images=1", headers={"HX-Request": "true"})
    assert "https://tracker.example/p.gif" in loaded.content.decode()
    assert "https:" in loaded["Content-Security-Policy"]
    assert "<html" not in loaded.content.decode()  # the partial only


def test_queue_item_of_decided_or_foreign_email_redirects(owner, other, console):
    foreign = held_email(other.mailbox)
    response = console.get(f"/console/queue/{foreign.pk}")
    assert response.status_code == 302


@pytest.mark.django_db(transaction=True)
def test_reject_inline_with_reason(owner, console):
    email = held_email(owner.mailbox)
    response = console.post(
        f"/console/queue/{email.pk}/decide",
        {"action": "reject", "reason": "Wrong recipient", "version": card_version(console, email)},
        headers={"HX-Request": "true"},
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body
    assert f'data-decided="{email.pk}"' in body
    assert 'hx-swap-oob="true"' in body  # the counts
    assert "Rejected" in body
    email.refresh_from_db()
    assert email.status == EmailStatus.REJECTED
    assert email.decision_reason == "Wrong recipient"
    assert email.approved_by == f"operator:{owner.operator.email}"
    assert AuditEntry.objects.filter(action="email.rejected", resource_id=email.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_approve_inbound_without_javascript(owner, console):
    email = held_email(owner.mailbox, direction=Direction.INBOUND)
    response = console.post(
        f"/console/queue/{email.pk}/decide",
        {"action": "approve", "version": card_version(console, email)},
    )
    assert response.status_code == 302
    assert response["Location"] == "/console/"
    email.refresh_from_db()
    assert email.status == EmailStatus.UNREAD
    page = console.get("/console/")
    assert "Approved: the agent can read it now." in page.content.decode()


@pytest.mark.django_db(transaction=True)
def test_second_decision_shows_already_decided(owner, console):
    email = held_email(owner.mailbox)
    version = card_version(console, email)
    console.post(f"/console/queue/{email.pk}/decide", {"action": "reject", "version": version})
    again = console.post(
        f"/console/queue/{email.pk}/decide",
        {"action": "approve", "version": version},
        headers={"HX-Request": "true"},
    )
    assert "code-already_decided" in again.content.decode()


def test_cannot_decide_another_tenants_email(owner, other, console):
    email = held_email(other.mailbox)
    response = console.post(f"/console/queue/{email.pk}/decide", {"action": "reject"}, follow=True)
    assert "code-not_found" in response.content.decode()
    email.refresh_from_db()
    assert email.status == EmailStatus.PENDING_SEND_APPROVAL


def test_bad_action_is_reported(owner, console):
    email = held_email(owner.mailbox)
    response = console.post(f"/console/queue/{email.pk}/decide", {"action": "maybe"}, follow=True)
    assert "code-invalid_parameter" in response.content.decode()


def test_polling_answers_204_when_nothing_changed(owner, console):
    held_email(owner.mailbox)
    first = console.get("/console/", headers={"HX-Request": "true"})
    body = first.content.decode()
    assert "<html" not in body
    version = body.split("?v=")[1].split('"')[0]
    unchanged = console.get(f"/console/?v={version}", headers={"HX-Request": "true"})
    assert unchanged.status_code == 204
    held_email(owner.mailbox, subject="A new one")
    changed = console.get(f"/console/?v={version}", headers={"HX-Request": "true"})
    assert changed.status_code == 200
    assert "A new one" in changed.content.decode()
    assert 'id="pending-badge"' in changed.content.decode()


def test_queue_only_shows_own_account(owner, other, console):
    held_email(other.mailbox, subject="Globex secret")
    assert "Globex secret" not in console.get("/console/").content.decode()


def test_queue_pages_with_a_cursor(owner, console):
    for index in range(QUEUE_PAGE_SIZE + 3):
        held_email(owner.mailbox, subject=f"Held {index:02d}")
    # Oldest first by default (the next to expire).
    first = console.get("/console/").content.decode()
    assert "Held 02" in first
    assert "Held 22" not in first
    cursor = first.split("?cursor=")[1].split('"')[0]
    second = console.get(f"/console/?cursor={cursor}").content.decode()
    assert "Held 22" in second
    assert "Held 02" not in second
    newest = console.get("/console/?order=newest").content.decode()
    assert "Held 22" in newest
    assert "Held 02" not in newest
    bad = console.get("/console/?cursor=nonsense", follow=True)
    assert "code-invalid_parameter" in bad.content.decode()


def test_queue_query_count_does_not_grow(owner, console):
    def count(n: int) -> int:
        for _ in range(n):
            email = held_email(owner.mailbox)
            Attachment.objects.create(
                email=email, filename="a.txt", content_type="text/plain", size=1, content=b"a"
            )
        with CaptureQueriesContext(connection) as queries:
            assert console.get("/console/").status_code == 200
        return len(queries)

    small = count(2)
    large = count(15)
    assert small == large


@pytest.mark.django_db(transaction=True)
def test_approve_outbound_sends_it(owner, console):
    email = held_email(owner.mailbox)
    response = console.post(
        f"/console/queue/{email.pk}/decide",
        {"action": "approve", "version": card_version(console, email)},
        headers={"HX-Request": "true"},
    )
    # The transaction really commits here: delivery ran in-process before the answer.
    assert "Approved and sent." in response.content.decode()
    email.refresh_from_db()
    assert email.status == EmailStatus.SENT
    assert email.approved_by == f"operator:{owner.operator.email}"
