"""Attachment names judged as the recipient's computer sees them, on every path.

Hypothesis disguises names with what file systems and mail clients drop or read
differently: zero-width and bidi characters, control characters, trailing dots and
spaces, NTFS stream suffixes, decomposed Unicode, odd case. A disguised program is refused
on send and reply and scored as spam inbound (Postmark JSON, and MIME as local delivery and
the SMTP listener read it); a harmless name is stored and sent in its normalized form; and
a program's bytes are refused whatever the name.
"""

from __future__ import annotations

import base64
import json
import unicodedata
from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from mailboxes.models import Email, EmailStatus
from mailboxes.services.attachment_safety import attachment_name_normalize
from multimail.ids import new_id
from tests.conftest import Tenant
from tests.inbound.conftest import build_mime
from tests.outbound.conftest import attachment

pytestmark = pytest.mark.django_db

SECRET = "postmark:s3cret"
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u202e", "\u202d",
             "\u2066", "\u2067", "\u2069", "\u200e", "\u200f", "\u3164", "\u115f"]  # fmt: skip
CONTROL = [chr(code) for code in (*range(1, 9), 11, 12, *range(14, 32), 127)]
STREAMS = ["", "::$DATA", ":hidden", ":Zone.Identifier:$DATA"]
TRAILING = ["", ".", " ", ". .", "...", " . "]
EXECUTABLE = [".exe", ".scr", ".bat", ".js", ".vbs", ".hta", ".ps1", ".lnk", ".msi", ".cmd"]
HARMLESS = [".pdf", ".txt", ".csv", ".png", ".docx"]
stems = st.text(alphabet="abcdefghijklmnopqrstuvwxyzé ", min_size=1, max_size=12).filter(
    lambda stem: stem.strip()
)


@st.composite
def disguised(draw: st.DrawFn, extensions: list[str]) -> tuple[str, str]:
    """(disguised name, the name a recipient's system reads)."""
    stem = draw(stems).strip()
    extension = draw(st.sampled_from(extensions))
    if draw(st.booleans()):
        extension = extension.upper()
    clean = f"{stem}{extension}"
    name = list(unicodedata.normalize("NFD", clean) if draw(st.booleans()) else clean)
    for _ in range(draw(st.integers(0, 4))):
        junk = draw(st.sampled_from(INVISIBLE + CONTROL))
        name.insert(draw(st.integers(0, len(name))), junk)
    suffix = draw(st.sampled_from(STREAMS)) + draw(st.sampled_from(TRAILING))
    return "".join(name) + suffix, " ".join(unicodedata.normalize("NFC", clean).split())


def _payload_names(name: str) -> str:
    # Inbound names come from strangers and are normalized. CR and LF are left out: a
    # name cannot carry them through the payloads these tests build.
    return name.replace("\r", "").replace("\n", "")


def _mime_name(name: str) -> str:
    # Python's MIME writer refuses every character str.splitlines breaks at in a header;
    # the Postmark JSON path still carries them.
    return "".join(char for char in name if len(f"a{char}a".splitlines()) == 1)


def _refused_at_the_door(response: Any, name: str) -> bool:
    """The API takes no control character in a header-bound field (a 400 naming it); a
    name without one reaches the attachment filter."""
    if not any(char in CONTROL for char in name):
        return False
    assert response.status_code == 400, response.content[:300]
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_parameter", "attachments.0.name")
    return True


@hypothesis_settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=disguised(EXECUTABLE))
@example(case=("invoice\u202efdp.exe", "invoicefdp.exe"))
@example(case=("setup.exe. . ", "setup.exe"))
@example(case=("report.exe::$DATA", "report.exe"))
def test_a_disguised_program_is_refused_on_send_and_reply(
    send: Callable[..., Any], owner: Tenant, case: tuple[str, str]
) -> None:
    name, seen = case
    name = _payload_names(name)
    response = send(subject=f"Files {new_id()}", attachments=[attachment(name, b"hello")])
    if _refused_at_the_door(response, name):
        return
    assert response.status_code == 202, response.content[:300]
    email = Email.objects.get(pk=response.json()["id"])
    assert email.status == EmailStatus.REJECTED
    assert email.failure_reason.startswith("content_rejected: executable attachment")
    assert repr(seen) in email.failure_reason
    assert email.attachments.get().filename == seen
    assert not [m for m in mail.outbox if m.subject == email.subject]
    reply = send(
        path=f"/v1/mailboxes/{owner.mailbox.pk}/reply/{email.pk}",
        to=None,
        subject=None,
        markdown=f"again {new_id()}",
        attachments=[attachment(name, b"hello")],
    )
    assert reply.status_code == 202, reply.content[:300]
    replied = Email.objects.get(pk=reply.json()["id"])
    assert replied.status == EmailStatus.REJECTED
    assert repr(seen) in replied.failure_reason


@hypothesis_settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=disguised(HARMLESS))
def test_a_harmless_name_is_stored_and_sent_normalized(
    send: Callable[..., Any], case: tuple[str, str]
) -> None:
    name, seen = case
    assert attachment_name_normalize(name) == seen
    name = _payload_names(name)
    response = send(subject=f"Files {new_id()}", attachments=[attachment(name, b"hello")])
    if _refused_at_the_door(response, name):
        return
    email = Email.objects.get(pk=response.json()["id"])
    assert email.status == EmailStatus.SENT, email.failure_reason
    assert email.attachments.get().filename == seen
    [message] = [m for m in mail.outbox if m.subject == email.subject]
    [part] = list(message.message().iter_attachments())
    assert part.get_filename() == seen


@pytest.mark.parametrize(
    "head", [b"MZ\x90\x00\x03", b"\x7fELF\x02\x01", b"\xcf\xfa\xed\xfe\x07", b"\xca\xfe\xba\xbe"]
)
def test_a_program_is_refused_whatever_its_name(send: Callable[..., Any], head: bytes) -> None:
    response = send(
        attachments=[attachment("quarterly.pdf", head + b"\x00" * 64, "application/pdf")]
    )
    email = Email.objects.get(pk=response.json()["id"])
    assert email.status == EmailStatus.REJECTED
    assert "its content is a program" in email.failure_reason


def _postmark(body: dict[str, Any]) -> Any:
    return APIClient().post(
        "/v1/webhooks/postmark-inbound",
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION="Basic " + base64.b64encode(SECRET.encode()).decode(),
    )


@hypothesis_settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=disguised(EXECUTABLE), as_mime=st.booleans())
def test_inbound_names_are_normalized_and_programs_scored(
    owner: Tenant, settings: Any, case: tuple[str, str], as_mime: bool
) -> None:
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET}
    name, seen = case
    name = _payload_names(name)
    message_id = f"<{new_id()}@example.org>"
    content = b"hello"
    body: dict[str, Any] = {
        "FromFull": {"Email": "alice@example.org", "Name": "Alice"},
        "ToFull": [{"Email": owner.mailbox.address, "Name": ""}],
        "OriginalRecipient": owner.mailbox.address,
        "Subject": "Files",
        "TextBody": "Hi",
        "Headers": [{"Name": "Message-ID", "Value": message_id}],
        "Attachments": [
            {"Name": name, "Content": base64.b64encode(content).decode(),
             "ContentType": "application/octet-stream", "ContentLength": len(content)}
        ],
    }  # fmt: skip
    if as_mime:
        # The MIME path: what local delivery and the SMTP listener hand to the parser.
        body["RawEmail"] = build_mime(
            to=owner.mailbox.address,
            message_id=message_id,
            attachments=[(_mime_name(name), "application/octet-stream", content)],
        ).decode()
    assert _postmark(body).json() == {"received": True, "processed": 1}
    received = Email.objects.get(mailbox=owner.mailbox, message_id=message_id)
    assert received.attachments.get().filename == seen
    assert any(f"executable attachment {seen!r}" in reason for reason in received.spam_reasons)
