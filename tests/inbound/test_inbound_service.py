"""inbound_receive: parsing, threading, attachments, spam, policy, idempotency, side effects."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import UsageDaily, UsageEventType
from mailboxes.models import Direction, Email, EmailStatus, SpamVerdict, WebhookDelivery
from mailboxes.services.inbound.receive import inbound_receive, normalize_subject
from mailboxes.services.spam import SpamSignals, spam_score
from tests.conftest import Tenant
from tests.inbound.conftest import build_mime, make_email

pytestmark = pytest.mark.django_db


def receive(tenant: Tenant, **kwargs: Any) -> list[Email]:
    raw = build_mime(to=tenant.mailbox.address, **kwargs)
    return inbound_receive(raw=raw, recipients=[tenant.mailbox.address], source="test")


def test_stores_a_plain_message(owner: Tenant) -> None:
    [email] = receive(owner, subject="Quarterly report", text="Numbers attached.\n")
    assert email.direction == Direction.INBOUND
    assert email.status == EmailStatus.UNREAD
    assert email.from_address == "alice@example.org"
    assert email.to == [owner.mailbox.address]
    assert email.subject == "Quarterly report"
    assert email.markdown == "Numbers attached."
    assert email.message_id.startswith("<")
    assert email.thread_id
    assert email.spam_verdict == SpamVerdict.CLEAN
    assert email.spam_score == 0
    assert email.size_bytes == len(email.markdown) + len(email.text)
    assert email.headers["From"] == "Alice Sender <alice@example.org>"


def test_html_is_converted_to_markdown(owner: Tenant) -> None:
    [email] = receive(
        owner, html='<h1>Hi</h1><p>Read <a href="https://example.org/x">this</a> <b>now</b></p>'
    )
    assert "# Hi" in email.markdown
    assert "[this](https://example.org/x)" in email.markdown
    assert "**now**" in email.markdown
    assert email.html.startswith("<h1>")


def test_attachments_are_stored_with_their_bytes(owner: Tenant) -> None:
    [email] = receive(
        owner,
        attachments=[
            ("report.pdf", "application/pdf", b"%PDF-1.7 data"),
            ("report.pdf", "application/pdf", b"second copy"),
        ],
    )
    assert email.has_attachments
    rows = list(email.attachments.order_by("filename"))
    assert [(a.filename, a.size, bytes(a.content)) for a in rows] == [
        ("report (2).pdf", 11, b"second copy"),
        ("report.pdf", 13, b"%PDF-1.7 data"),
    ]


def test_forwarded_message_is_kept_as_one_eml_attachment(owner: Tenant) -> None:
    inner = EmailMessage()
    inner["From"] = "bob@example.net"
    inner["Subject"] = "Original"
    inner.set_content("original body")
    outer = EmailMessage()
    outer["From"] = "alice@example.org"
    outer["To"] = owner.mailbox.address
    outer["Subject"] = "Fwd: Original"
    outer["Message-ID"] = make_msgid()
    outer.set_content("see below")
    outer.add_attachment(inner)
    [email] = inbound_receive(
        raw=outer.as_bytes(), recipients=[owner.mailbox.address], source="test"
    )
    [attachment] = email.attachments.all()
    assert attachment.content_type == "message/rfc822"
    assert attachment.filename.endswith(".eml")
    assert b"original body" in bytes(attachment.content)
    assert email.markdown == "see below"


def test_unknown_and_inactive_recipients_get_nothing(owner: Tenant) -> None:
    owner.mailbox.is_active = False
    owner.mailbox.save()
    raw = build_mime(to=owner.mailbox.address)
    assert inbound_receive(raw=raw, recipients=[owner.mailbox.address], source="test") == []
    assert inbound_receive(raw=raw, recipients=["nobody@nowhere.example"], source="test") == []
    assert not Email.objects.exists()


def test_same_message_id_twice_is_stored_once(owner: Tenant) -> None:
    raw = build_mime(to=owner.mailbox.address, message_id="<once@example.org>")
    first = inbound_receive(raw=raw, recipients=[owner.mailbox.address], source="smtp")
    second = inbound_receive(
        raw=raw, recipients=[owner.mailbox.address, owner.mailbox.address.upper()], source="pm"
    )
    assert [e.pk for e in second] == [first[0].pk]
    assert Email.objects.count() == 1
    usage = UsageDaily.objects.get(account=owner.account, event_type=UsageEventType.EMAILS_RECEIVED)
    assert usage.count == 1


def test_one_message_to_two_tenants_lands_in_both(owner: Tenant, other: Tenant) -> None:
    recipients = [owner.mailbox.address, other.mailbox.address]
    raw = build_mime(to=", ".join(recipients))
    emails = inbound_receive(raw=raw, recipients=recipients, source="test")
    assert {e.account_id for e in emails} == {owner.account.pk, other.account.pk}
    assert emails[0].thread_id != emails[1].thread_id


def test_reply_joins_the_thread_of_the_referenced_email(owner: Tenant) -> None:
    sent = make_email(
        owner.mailbox,
        direction=Direction.OUTBOUND,
        status=EmailStatus.SENT,
        from_address=owner.mailbox.address,
        to=["alice@example.org"],
        message_id="<sent-1@acme>",
    )
    [reply] = receive(owner, subject="Re: Stored email", in_reply_to="<sent-1@acme>")
    assert reply.thread_id == sent.thread_id
    assert reply.subject == "Re: Stored email"  # kept as sent
    [deeper] = receive(
        owner, subject="something else", references=f"<unknown@x> {reply.message_id}"
    )
    assert deeper.thread_id == sent.thread_id


def test_references_only_match_within_the_same_mailbox(owner: Tenant, other: Tenant) -> None:
    make_email(other.mailbox, message_id="<theirs@globex>")
    [email] = receive(owner, in_reply_to="<theirs@globex>")
    assert not Email.objects.filter(mailbox=other.mailbox, thread_id=email.thread_id).exists()


def test_subject_fallback_threads_a_reply_without_headers(owner: Tenant) -> None:
    sent = make_email(
        owner.mailbox,
        direction=Direction.OUTBOUND,
        status=EmailStatus.SENT,
        from_address=owner.mailbox.address,
        to=["alice@example.org"],
        subject="Meeting on Tuesday",
    )
    [reply] = receive(owner, subject="RE: Fwd: Meeting on Tuesday")
    assert reply.thread_id == sent.thread_id
    # Same subject from someone else, or without a reply prefix, starts a new thread.
    [stranger] = receive(owner, subject="Re: Meeting on Tuesday", sender="eve@evil.example")
    [fresh] = receive(owner, subject="Meeting on Tuesday")
    assert stranger.thread_id != sent.thread_id
    assert fresh.thread_id != sent.thread_id


def test_normalize_subject() -> None:
    assert normalize_subject("Re: RE: Fwd: FW: Hello") == "hello"
    assert normalize_subject("Re[2]: Hello") == "hello"
    assert normalize_subject("Hello: world") == "hello: world"


def test_message_received_event_and_usage(owner: Tenant) -> None:
    owner.mailbox.webhook_url = "https://hooks.example.org/in"
    owner.mailbox.save()
    [email] = receive(owner)
    delivery = WebhookDelivery.objects.get(event_type="message.received")
    assert delivery.url == "https://hooks.example.org/in"
    assert delivery.payload["data"]["email_id"] == email.pk
    assert delivery.payload["data"]["status"] == "unread"


def test_gated_all_holds_inbound_for_the_operator(owner: Tenant) -> None:
    owner.mailbox.oversight_mode = "gated_all"
    owner.mailbox.oversight_webhook_url = "https://hooks.example.org/oversight"
    owner.mailbox.save()
    [email] = receive(owner)
    email.refresh_from_db()
    assert email.status == EmailStatus.PENDING_INBOUND_APPROVAL
    assert WebhookDelivery.objects.filter(event_type="oversight.pending").exists()


@pytest.mark.parametrize("mode", ["read_only", "gated_send", "monitored", "autonomous"])
def test_other_modes_deliver(owner: Tenant, mode: str) -> None:
    owner.mailbox.oversight_mode = mode
    owner.mailbox.save()
    [email] = receive(owner)
    assert email.status == EmailStatus.UNREAD


def test_forward_inbound_sends_the_operator_a_copy(
    owner: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    owner.mailbox.forward_inbound = True
    owner.mailbox.save()
    with django_capture_on_commit_callbacks(execute=True):
        receive(
            owner,
            subject="Invoice 42",
            text="Please pay.\n",
            html="<p>Please pay.</p><script>alert(1)</script>",
        )
    [copy] = [m for m in mail.outbox if "Invoice 42" in m.subject]
    assert copy.to == [owner.account.oversight_email]
    assert "Please pay." in copy.body
    [(html, _)] = copy.alternatives
    assert "<p>Please pay.</p>" in html
    assert "script" not in html


def test_spam_is_flagged_or_quarantined(owner: Tenant) -> None:
    [flagged] = receive(
        owner,
        subject="YOU HAVE WON THE LOTTERY",
        text="Claim your prize by wire transfer. Act now!",
    )
    assert flagged.spam_verdict == SpamVerdict.FLAGGED
    assert flagged.status == EmailStatus.SPAM_FLAGGED
    [quarantined] = receive(
        owner,
        subject="URGENT ACCOUNT NOTICE",
        text="verify your account",
        headers={"X-Spam-Status": "Yes, score=9.1", "X-Spam-Score": "9.1"},
    )
    assert quarantined.spam_verdict == SpamVerdict.QUARANTINED
    assert quarantined.status == EmailStatus.SPAM_QUARANTINED
    assert quarantined.spam_score == 100
    # Quarantined mail does not wake the agent.
    received = WebhookDelivery.objects.filter(event_type="message.received")
    assert all(d.payload["data"]["email_id"] != quarantined.pk for d in received)


def test_spam_scorer_rules() -> None:
    base = SpamSignals(
        subject="Hello",
        body="Hi",
        from_address="a@example.org",
        reply_to="",
        has_message_id=True,
        has_date=True,
        html_only=False,
        attachment_names=(),
        upstream_flag=False,
        upstream_score=None,
    )
    assert spam_score(signals=base).score == 0
    exe = SpamSignals(**{**_fields(base), "attachment_names": ("invoice.pdf.exe",)})
    assert spam_score(signals=exe).score == 40
    bare = SpamSignals(**{**_fields(base), "has_message_id": False, "has_date": False})
    assert spam_score(signals=bare).score == 20
    shout = SpamSignals(**{**_fields(base), "subject": "FREE MONEY TODAY"})
    assert spam_score(signals=shout).score == 15
    links = SpamSignals(**{**_fields(base), "body": "https://x.example " * 11})
    assert spam_score(signals=links).score == 10
    mismatch = SpamSignals(**{**_fields(base), "reply_to": "b@other.example", "html_only": True})
    assert spam_score(signals=mismatch).score == 10


def _fields(signals: SpamSignals) -> dict[str, Any]:
    return {name: getattr(signals, name) for name in SpamSignals.__slots__}


def test_message_without_message_id_gets_one(owner: Tenant) -> None:
    raw = (
        f"From: a@example.org\r\nTo: {owner.mailbox.address}\r\nSubject: bare\r\n\r\nbody\r\n"
    ).encode()
    [email] = inbound_receive(raw=raw, recipients=[owner.mailbox.address], source="test")
    assert email.message_id.startswith("<")
    assert email.message_id.endswith(">")
    assert email.markdown == "body"


def test_the_mailboxes_and_their_stored_copies_are_one_statement(
    owner: Tenant, other: Tenant
) -> None:
    """One SELECT finds the recipients' mailboxes (with their accounts) and whether each
    stored the message already; a second delivery reads only the copies it returns."""
    recipients = [other.mailbox.address, "nobody@nowhere.example", owner.mailbox.address]
    raw = build_mime(to=", ".join(recipients), message_id="<one-read@example.org>")
    with CaptureQueriesContext(connection) as first:
        stored = inbound_receive(raw=raw, recipients=recipients, source="test")
    assert [email.mailbox_id for email in stored] == [other.mailbox.pk, owner.mailbox.pk]
    reads = [q["sql"] for q in first.captured_queries if q["sql"].startswith("SELECT")]
    assert len([sql for sql in reads if 'FROM "mailboxes_mailbox"' in sql]) == 1
    assert not [sql for sql in reads if sql.startswith('SELECT "mailboxes_email"')]
    with CaptureQueriesContext(connection) as again:
        copies = inbound_receive(raw=raw, recipients=recipients[::-1], source="test")
    assert [email.pk for email in copies] == [email.pk for email in stored[::-1]]
    assert len(again.captured_queries) == 3
