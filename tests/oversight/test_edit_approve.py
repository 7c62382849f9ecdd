"""Edit, then approve: the operator corrects a held outbound email and approves it in one
step; it is scanned again and sent exactly as edited, and the trail keeps both versions."""

from __future__ import annotations

from typing import Any

from django.core import mail
from django.test import TestCase
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import AuditEntry
from mailboxes.models import Direction, EmailStatus, Suppression
from tests.conftest import Tenant, assert_error
from tests.oversight.conftest import held

DECIDE = "/v1/oversight/decide"
EDITS = {
    "to": ["right@example.org"],
    "cc": ["boss@example.org"],
    "bcc": ["archive@example.org"],
    "subject": "Quarterly numbers (corrected)",
    "markdown": "Hello **there**, the total is 42.",
}


def _decide(client: Any, payload: dict[str, Any]) -> Any:
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(DECIDE, payload, format="json")


def _sent() -> Any:
    [sent] = [m for m in mail.outbox if not m.extra_headers.get("X-MultiMail-Notification")]
    return sent


def test_the_sent_mime_is_the_edit(owner: Tenant, api) -> None:
    email = held(owner.mailbox, to=["wrong@example.org"], subject="Quartely numbers")
    [seen] = api("oversight_read").get("/v1/oversight/pending").json()["emails"]
    mail.outbox.clear()
    response = _decide(
        api("oversight"),
        {"email_id": email.pk, "action": "approve", "version": seen["version"], "edits": EDITS},
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "approved_and_sent"

    sent = _sent()
    raw = sent.message()
    assert raw["Subject"] == EDITS["subject"]
    assert raw["To"] == "right@example.org"
    assert raw["Cc"] == "boss@example.org"
    assert raw["Bcc"] is None
    assert sent.recipients() == ["right@example.org", "boss@example.org", "archive@example.org"]
    text = next(p.get_content() for p in raw.walk() if p.get_content_type() == "text/plain")
    assert "the total is 42." in text
    html = next(p.get_content() for p in raw.walk() if p.get_content_type() == "text/html")
    assert "<strong>there</strong>" in html  # rendered again from the edited markdown

    email.refresh_from_db()
    assert email.status == EmailStatus.SENT
    assert email.edited_by_operator is True
    entry = AuditEntry.objects.get(action="email.edited_by_operator", resource_id=email.pk)
    assert entry.metadata["before"]["to"] == ["wrong@example.org"]
    assert entry.metadata["before"]["subject"] == "Quartely numbers"
    assert entry.metadata["after"] == EDITS
    approved = AuditEntry.objects.get(action="email.approved", resource_id=email.pk)
    assert approved.metadata["version"] != seen["version"]  # the edited version

    detail = api("read").get(f"/v1/mailboxes/{owner.mailbox.pk}/emails/{email.pk}").json()
    assert detail["edited_by_operator"] is True
    assert detail["subject"] == EDITS["subject"]
    assert detail["to"] == EDITS["to"]
    assert detail["markdown"] == EDITS["markdown"]


def test_an_edit_is_on_the_version_the_operator_saw(owner: Tenant, api) -> None:
    email = held(owner.mailbox)
    response = _decide(
        api("oversight"),
        {"email_id": email.pk, "action": "approve", "version": "stale", "edits": EDITS},
    )
    assert_error(response, "conflict")
    email.refresh_from_db()
    assert (email.status, email.subject, email.edited_by_operator) == (
        EmailStatus.PENDING_SEND_APPROVAL,
        "Quarterly numbers",
        False,
    )


def test_refused_edits_change_nothing(owner: Tenant, api) -> None:
    email = held(owner.mailbox)
    inbound = held(owner.mailbox, direction=Direction.INBOUND)
    Suppression.objects.create(
        account=owner.account, email_address="gone@example.org", reason="manual"
    )
    client = api("oversight")
    cases = [
        ({"email_id": email.pk, "action": "reject", "edits": EDITS}, "invalid_parameter"),
        ({"email_ids": [email.pk], "action": "approve", "edits": EDITS}, "invalid_parameter"),
        ({"email_id": email.pk, "action": "approve", "edits": {}}, "missing_parameter"),
        ({"email_id": email.pk, "action": "approve", "edits": {"to": []}}, "missing_parameter"),
        (
            {"email_id": email.pk, "action": "approve", "edits": {"to": ["gone@example.org"]}},
            "recipient_suppressed",
        ),
        (
            {"email_id": inbound.pk, "action": "approve", "edits": {"subject": "x"}},
            "invalid_parameter",
        ),
    ]
    for payload, code in cases:
        assert_error(_decide(client, payload), code)
    email.refresh_from_db()
    assert email.status == EmailStatus.PENDING_SEND_APPROVAL
    assert email.to == ["client@example.org"]
    assert not AuditEntry.objects.filter(action="email.edited_by_operator").exists()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    edits=st.fixed_dictionaries(
        {},
        optional={
            "to": st.lists(st.text(max_size=30), max_size=3),
            "subject": st.text(max_size=50),
            "markdown": st.text(max_size=200),
        },
    )
)
def test_any_edit_is_sent_as_edited_or_refused_whole(owner: Tenant, api, edits) -> None:
    email = held(owner.mailbox)
    mail.outbox.clear()
    response = _decide(
        api("oversight"), {"email_id": email.pk, "action": "approve", "edits": edits}
    )
    email.refresh_from_db()
    if response.status_code == 200:
        assert email.status == EmailStatus.SENT
        for name, value in edits.items():
            assert getattr(email, name) == (value.strip() if name == "subject" else value)
    else:
        assert response.json()["error"]["code"] in (
            "invalid_parameter",
            "missing_parameter",
            "content_rejected",
        )
        assert email.status == EmailStatus.PENDING_SEND_APPROVAL
        assert email.edited_by_operator is False
