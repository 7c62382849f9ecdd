"""The whole picture wherever the operator decides: the pending API, the hosted page, the
console's queue card and email page, and the notification email, all over HTTP."""

from __future__ import annotations

import base64
import re
from datetime import timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.services import api_key_create
from mailboxes.models import Direction, Email, EmailStatus
from mailboxes.services.inbound.receive import inbound_receive
from tests.conftest import Tenant, client_for
from tests.console.conftest import signed_in
from tests.oversight.conftest import last_token

PHISHING = (
    "Your statement is ready. Sign in at "
    "[https://clientco.com/login](https://clientco.com.account-check.example/login) "
    "or read [our terms](https://clientco.com/terms)."
)
# A Windows program: the DOS header, then the stub's well-known sentence.
PROGRAM = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"This program cannot be run"


def _inbound(tenant: Tenant, *, sender: str, subject: str, body: str = "Hello", **headers: str):
    message = EmailMessage()
    message["From"] = sender
    message["To"] = tenant.mailbox.address
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="clientco.com")
    message["Date"] = formatdate()
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message


def _receive(tenant: Tenant, message: EmailMessage) -> Email:
    [email] = inbound_receive(
        raw=message.as_bytes(), recipients=[tenant.mailbox.address], source="test"
    )
    return email


def _attachment(name: str, content_type: str, content: bytes) -> dict[str, str]:
    return {
        "name": name,
        "content_type": content_type,
        "content_base64": base64.b64encode(content).decode(),
    }


@pytest.fixture
def gated(owner: Tenant) -> Tenant:
    owner.mailbox.oversight_mode = "gated_send"
    owner.mailbox.display_name = "Acme Billing"
    owner.mailbox.save()
    return owner


@pytest.fixture
def agent(gated: Tenant) -> APIClient:
    _, raw = api_key_create(account=gated.account, name="Invoicing agent", scopes=["send", "read"])
    return client_for(raw)


@pytest.fixture
def overseer(api: Any) -> APIClient:
    return api("oversight_read")


def _send(agent: APIClient, tenant: Tenant, capture: Any, **payload: Any) -> Email:
    body = {"to": ["client@clientco.com"], "subject": "Statement", "markdown": "Hello"}
    body.update(payload)
    with capture(execute=True):
        response = agent.post(f"/v1/mailboxes/{tenant.mailbox.pk}/send", body, format="json")
    assert response.status_code == 202, response.content
    email = Email.objects.get(pk=response.json()["id"])
    assert email.status == EmailStatus.PENDING_SEND_APPROVAL, email.failure_reason
    return email


def _pending(overseer: APIClient, email: Email) -> dict[str, Any]:
    response = overseer.get("/v1/oversight/pending")
    assert response.status_code == 200
    [item] = [item for item in response.json()["emails"] if item["id"] == email.pk]
    return item


def _hosted_page() -> str:
    response = Client().get(f"/v1/approve/{last_token()}")
    assert response.status_code == 200
    return response.content.decode()


def test_a_phishing_link_is_flagged_on_the_pending_api_and_the_hosted_page(
    gated: Tenant, agent: APIClient, overseer: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    email = _send(agent, gated, django_capture_on_commit_callbacks, markdown=PHISHING)

    item = _pending(overseer, email)
    phishing, terms = item["links"]
    assert phishing == {
        "text": "https://clientco.com/login",
        "url": "https://clientco.com.account-check.example/login",
        "host": "clientco.com.account-check.example",
        "warnings": [
            "The text shows clientco.com but the link goes to clientco.com.account-check.example."
        ],
    }
    assert terms["warnings"] == []
    assert terms["url"] == "https://clientco.com/terms"
    # The content filter saw it too, without refusing the email (no credential wording).
    assert item["spam"]["content_findings"] == [
        "the link text 'https://clientco.com/login' hides a different destination "
        "(https://clientco.com.account-check.example/login)"
    ]
    assert any("clientco.com.account-check.example" in w for w in item["warnings"])

    page = _hosted_page()
    assert "Check before deciding" in page
    assert (
        "The text shows clientco.com but the link goes to clientco.com.account-check.example."
        in (page)
    )
    # The real target is shown as text, never as a link the operator could click.
    assert 'href="https://clientco.com.account-check.example' not in page

    [notice] = [m for m in mail.outbox if gated.account.oversight_email in m.to]
    assert "goes to clientco.com.account-check.example" in notice.body
    html = notice.alternatives[0][0]
    assert "Check before deciding" in html


def test_disguised_attachments_are_marked_and_programs_refused(
    gated: Tenant, agent: APIClient, overseer: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    # A program never reaches the operator: the content filter refuses it by its bytes,
    # whatever its name (mailboxes.services.attachment_safety).
    body = {"to": ["client@clientco.com"], "subject": "Invoice", "markdown": "Hello",
            "attachments": [_attachment("invoice.pdf", "application/pdf", PROGRAM)]}  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        response = agent.post(f"/v1/mailboxes/{gated.mailbox.pk}/send", body, format="json")
    refused = Email.objects.get(pk=response.json()["id"])
    assert refused.status == EmailStatus.REJECTED
    assert "'invoice.pdf' (its content is a program: exe)" in refused.failure_reason

    email = _send(
        agent,
        gated,
        django_capture_on_commit_callbacks,
        attachments=[
            _attachment("photo.png", "image/png", b"%PDF-1.7 a document"),
            _attachment("report.pdf", "application/pdf", b"%PDF-1.4 the real thing"),
        ],
    )

    photo, report = _pending(overseer, email)["attachments"]
    assert photo["executable"] is False
    assert photo["detected_type"] == "application/pdf"
    assert photo["warnings"] == [
        "Declared as image/png, but the content is a PDF document.",
        "Named .png, but the content is a PDF document.",
    ]
    assert report == {
        "name": "report.pdf",
        "content_type": "application/pdf",
        "size": 23,
        "detected_type": "application/pdf",
        "executable": False,
        "warnings": [],
    }

    page = _hosted_page()
    assert ">type mismatch</span>" in page

    queue = signed_in(gated).get("/console/").content.decode()
    assert ">type mismatch</span>" in queue


def test_an_inbound_program_is_marked(owner: Tenant, overseer: APIClient) -> None:
    owner.mailbox.oversight_mode = "gated_all"
    owner.mailbox.save()
    message = _inbound(owner, sender="Client <client@clientco.com>", subject="The tool")
    message.add_attachment(
        PROGRAM, maintype="application", subtype="octet-stream", filename="setup.exe"
    )
    email = _receive(owner, message)

    [setup] = _pending(overseer, email)["attachments"]
    assert setup["executable"] is True
    assert setup["warnings"] == [
        "Executable: setup.exe is a Windows program; opening it runs code."
    ]


def test_first_contact_until_mail_was_exchanged(
    gated: Tenant, agent: APIClient, overseer: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    email = _send(
        agent,
        gated,
        django_capture_on_commit_callbacks,
        to=["New.Person@ClientCo.com"],
        cc=["old@clientco.com"],
    )
    item = _pending(overseer, email)
    assert item["first_contact"] == {"new.person@clientco.com": True, "old@clientco.com": True}
    assert (
        "First contact: this account never exchanged mail with new.person@clientco.com, "
        "old@clientco.com." in item["warnings"]
    )

    # old@ writes to the mailbox; new.person@ gets an email the operator approves.
    with django_capture_on_commit_callbacks(execute=True):
        _receive(gated, _inbound(gated, sender="Old <old@clientco.com>", subject="Hi"))
    second = _send(
        agent,
        gated,
        django_capture_on_commit_callbacks,
        to=["new.person@clientco.com"],
        subject="Other",
    )
    _, raw = api_key_create(account=gated.account, name="Operator key", scopes=["oversight"])
    with django_capture_on_commit_callbacks(execute=True):
        decided = client_for(raw).post(
            "/v1/oversight/decide", {"email_id": second.pk, "action": "approve"}, format="json"
        )
    assert decided.json()["status"] == "approved_and_sent"
    second.refresh_from_db()
    assert second.status == EmailStatus.SENT

    item = _pending(overseer, email)
    assert item["first_contact"] == {"new.person@clientco.com": False, "old@clientco.com": False}
    assert not any(w.startswith("First contact") for w in item["warnings"])
    page = _hosted_page_for(email)
    assert "mailed before" in page
    assert "has written before" in page
    assert "first contact" not in page


def _hosted_page_for(email: Email) -> str:
    """The hosted page of ``email``, from its own notification (the newest may be another's)."""
    for message in reversed(mail.outbox):
        if message.subject.endswith(f": {email.subject}"):
            token = re.search(r"/v1/approve/([A-Za-z0-9_-]{40,})", message.body)
            assert token is not None
            return Client().get(f"/v1/approve/{token.group(1)}").content.decode()
    raise AssertionError("no notification for the email")


def test_the_sending_keys_name_is_shown(
    gated: Tenant, agent: APIClient, overseer: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    email = _send(agent, gated, django_capture_on_commit_callbacks)

    key = _pending(overseer, email)["sent_by_key"]
    assert key["name"] == "Invoicing agent"
    assert key["revoked"] is False
    assert key["prefix"] == email.sent_by_key.prefix
    assert "Invoicing agent" in _hosted_page()
    assert "Invoicing agent" in signed_in(gated).get("/console/").content.decode()
    assert "Invoicing agent" in mail.outbox[-1].body


def test_bcc_display_name_and_scheduled_time_are_shown(
    gated: Tenant, agent: APIClient, overseer: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    gated.mailbox.auto_bcc = "archive@acme.example"
    gated.mailbox.save()
    send_at = (timezone.now() + timedelta(days=2)).replace(second=0, microsecond=0)
    email = _send(
        agent,
        gated,
        django_capture_on_commit_callbacks,
        bcc=["hidden@partner.example"],
        send_at=send_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        gate_timing="gate_first",
    )

    item = _pending(overseer, email)
    assert item["bcc"] == ["hidden@partner.example"]
    assert item["send_at"] == send_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert item["gate_timing"] == "gate_first"
    assert item["first_contact"]["archive@acme.example"] is True  # the mailbox's own Bcc

    when = send_at.strftime("%Y-%m-%d %H:%M")
    for page in (_hosted_page(), signed_in(gated).get("/console/").content.decode()):
        assert "Acme Billing &lt;agent@acme.multimail.localhost&gt;" in page
        assert "<dt>Bcc</dt>" in page
        assert "hidden@partner.example" in page
        assert "<dt>Bcc added by the mailbox</dt>" in page
        assert "archive@acme.example" in page
        assert f"{when} UTC" in page
        assert "gate_first" in page
        assert "sent at that time without asking again" in page
    assert "hidden@partner.example" in mail.outbox[-1].body
    assert f"Scheduled for {when} UTC" in mail.outbox[-1].body


def test_a_reply_shows_the_message_it_answers(
    gated: Tenant, agent: APIClient, overseer: APIClient, django_capture_on_commit_callbacks: Any
) -> None:

    original = _receive(
        gated,
        _inbound(
            gated,
            sender="Client <client@clientco.com>",
            subject="Can you send the invoice?",
            body="Could you send me the March invoice? Thanks.",
        ),
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = agent.post(
            f"/v1/mailboxes/{gated.mailbox.pk}/reply/{original.pk}",
            {"markdown": "Here it is."},
            format="json",
        )
    reply = Email.objects.get(pk=response.json()["id"])

    answered = _pending(overseer, reply)["replying_to"]
    assert answered["email_id"] == original.pk
    assert answered["subject"] == "Can you send the invoice?"
    assert answered["from"] == "client@clientco.com"
    assert answered["excerpt"] == "Could you send me the March invoice? Thanks."

    page = _hosted_page()
    assert "In reply to" in page
    assert "Can you send the invoice?" in page
    assert "Could you send me the March invoice? Thanks." in page
    card = signed_in(gated).get("/console/").content.decode()
    assert f"/console/mailboxes/{gated.mailbox.pk}/emails/{original.pk}" in card


def test_the_spam_verdict_and_reasons_are_shown(
    owner: Tenant, overseer: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    owner.mailbox.oversight_mode = "gated_all"
    owner.mailbox.save()
    with django_capture_on_commit_callbacks(execute=True):
        email = _receive(
            owner,
            _inbound(
                owner,
                sender="Prize Desk <desk@lottery.example>",
                subject="YOU HAVE WON $1,000,000",
                body="You have won the lottery! Claim your prize: act now.",
                Reply_To="claims@elsewhere.example",
                X_Mailer="<b>Bulk</b>",
            ),
        )
    assert email.status == EmailStatus.PENDING_INBOUND_APPROVAL

    item = _pending(overseer, email)
    assert item["spam"]["verdict"] == "flagged"
    assert item["spam"]["score"] == 60
    assert "subject in capitals (+15)" in item["spam"]["reasons"]
    assert 'spam phrase "you have won" (+10)' in item["spam"]["reasons"]
    assert item["reply_to"] == ["claims@elsewhere.example"]
    assert item["headers"]["X-Mailer"] == "<b>Bulk</b>"
    assert f"Spam check: flagged (score {email.spam_score} of 100)." in item["warnings"]
    assert "Replies go to claims@elsewhere.example, not to the sender's domain." in item["warnings"]

    page = _hosted_page()
    assert "Prize Desk &lt;desk@lottery.example&gt;" in page
    assert "subject in capitals (+15)" in page
    assert "&lt;b&gt;Bulk&lt;/b&gt;" in page  # every header value is escaped
    assert "<b>Bulk</b>" not in page


def test_outbound_mail_is_scored_for_the_operator(
    gated: Tenant, agent: APIClient, overseer: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    email = _send(
        agent,
        gated,
        django_capture_on_commit_callbacks,
        subject="GREAT NEWS FOR YOU",
        markdown="You have won a lottery: claim your prize, act now and wire transfer the fee.",
    )
    spam = _pending(overseer, email)["spam"]
    assert spam == {
        "verdict": "flagged",
        "score": 55,
        "reasons": [
            'spam phrase "lottery" (+10)',
            'spam phrase "you have won" (+10)',
            'spam phrase "claim your prize" (+10)',
            'spam phrase "wire transfer" (+10)',
            "subject in capitals (+15)",
        ],
        "content_findings": [],
    }
    assert "Spam check: flagged (score 55 of 100)." in _hosted_page()


def test_the_detail_carries_the_same_version_and_edits_change_it(
    gated: Tenant, agent: APIClient, overseer: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    send_at = timezone.now() + timedelta(days=1)
    email = _send(
        agent,
        gated,
        django_capture_on_commit_callbacks,
        send_at=send_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    detail = f"/v1/mailboxes/{gated.mailbox.pk}/emails/{email.pk}"
    version = agent.get(detail).json()["version"]
    assert version == _pending(overseer, email)["version"]
    assert agent.get(detail).json()["version"] == version  # reading changes nothing

    with django_capture_on_commit_callbacks(execute=True):
        edited = agent.patch(f"{detail}/schedule", {"bcc": ["late@partner.example"]}, format="json")
    assert edited.status_code == 200, edited.content
    after_edit = agent.get(detail).json()["version"]
    assert after_edit != version
    assert _pending(overseer, email)["version"] == after_edit

    gated.mailbox.display_name = "Someone Else"
    gated.mailbox.save()
    assert agent.get(detail).json()["version"] not in (version, after_edit)


def test_the_console_shows_the_raw_source_of_outbound_mail(
    gated: Tenant, agent: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    email = _send(
        agent,
        gated,
        django_capture_on_commit_callbacks,
        subject="Statement <March>",
        attachments=[_attachment("notes.txt", "text/plain", b"hello")],
    )
    console = signed_in(gated)
    page = console.get(f"/console/mailboxes/{gated.mailbox.pk}/emails/{email.pk}").content.decode()
    source_url = f"/console/mailboxes/{gated.mailbox.pk}/emails/{email.pk}/source"
    assert source_url in page
    assert "Invoicing agent" in page

    source = console.get(source_url)
    assert source.status_code == 200
    assert source["Content-Type"] == "text/plain; charset=utf-8"
    assert source["X-Content-Type-Options"] == "nosniff"
    text = source.content.decode()
    assert "Subject: Statement <March>" in text
    assert "From: Acme Billing <agent@acme.multimail.localhost>" in text
    assert f"Message-ID: {email.message_id}" in text
    assert 'filename="notes.txt"' in text
    assert "Bcc:" not in text

    inbound = Email.objects.create(
        account=gated.account,
        mailbox=gated.mailbox,
        direction=Direction.INBOUND,
        status=EmailStatus.UNREAD,
        from_address="client@clientco.com",
        to=[gated.mailbox.address],
        thread_id=email.thread_id,
    )
    refused = console.get(f"/console/mailboxes/{gated.mailbox.pk}/emails/{inbound.pk}/source")
    assert refused.status_code == 302


def test_pending_queries_do_not_grow_with_replies_and_attachments(
    gated: Tenant, agent: APIClient, overseer: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    def held_reply(n: int) -> None:
        original = _receive(gated, _inbound(gated, sender="c@clientco.com", subject=f"Q {n}"))
        with django_capture_on_commit_callbacks(execute=True):
            agent.post(
                f"/v1/mailboxes/{gated.mailbox.pk}/reply/{original.pk}",
                {
                    "markdown": f"Answer {n}",
                    "attachments": [_attachment("a.pdf", "application/pdf", b"%PDF-")],
                },
                format="json",
            )

    held_reply(0)
    overseer.get("/v1/oversight/pending")  # warm-up: key touch and today's usage row exist
    with CaptureQueriesContext(connection) as small:
        overseer.get("/v1/oversight/pending", {"limit": 1})
    for n in range(1, 6):
        held_reply(n)
    with CaptureQueriesContext(connection) as large:
        response = overseer.get("/v1/oversight/pending", {"limit": 50})

    emails = response.json()["emails"]
    assert len(emails) == 6
    assert all(item["replying_to"] and item["attachments"] for item in emails)
    assert len(large.captured_queries) == len(small.captured_queries)


def test_mail_exchanged_before_the_upgrade_counts(owner: Tenant, overseer: APIClient) -> None:
    """The migration fills the history from the mail already stored."""
    import importlib

    from django.apps import apps

    from mailboxes.models import Correspondent
    from tests.oversight.conftest import held, make_email

    make_email(
        owner.mailbox, status=EmailStatus.SENT, to=["Known@ClientCo.com"], sent_at=timezone.now()
    )
    make_email(owner.mailbox, status=EmailStatus.REJECTED, to=["never@clientco.com"])
    make_email(
        owner.mailbox,
        direction=Direction.INBOUND,
        status=EmailStatus.UNREAD,
        from_address="writer@clientco.com",
    )
    pending = held(
        owner.mailbox, to=["known@clientco.com", "never@clientco.com", "writer@clientco.com"]
    )
    migration = importlib.import_module("mailboxes.migrations.0006_decision_facts")
    migration.fill_correspondents(apps, None)

    assert Correspondent.objects.count() == 2
    assert _pending(overseer, pending)["first_contact"] == {
        "known@clientco.com": False,
        "never@clientco.com": True,
        "writer@clientco.com": False,
    }
