"""A Postmark inbound payload read from its JSON fields gives the message that parsing the
equivalent MIME gives: the MIME anymail builds from the same fields, as the webhook once
stored it."""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from anymail.webhooks.postmark import PostmarkInboundWebhookView

from mailboxes.services.inbound.parse import ParsedMessage, message_parse, postmark_message_parse

FIXTURE = Path(__file__).parent / "fixtures" / "postmark_inbound.json"
# Headers of the MIME container anymail makes up (a random boundary): not the sender's.
_CONTAINER_HEADERS = {"MIME-Version", "Content-Type"}


def _payload(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(FIXTURE.read_text())
    payload.update(copy.deepcopy(changes))
    return payload


def _via_mime(payload: dict[str, Any]) -> ParsedMessage:
    # Only the payload conversion is used: the view's webhook-secret check never runs.
    view = PostmarkInboundWebhookView(webhook_secret="unused:unused")
    event = view.esp_to_anymail_event(copy.deepcopy(payload))
    return message_parse(event.message.as_bytes())


def _comparable(parsed: ParsedMessage) -> dict[str, Any]:
    fields = dataclasses.asdict(parsed)
    # Folding a long header moves blanks to the edges of its value: no part of the value.
    fields["headers"] = {
        name: value.strip()
        for name, value in parsed.headers.items()
        if name not in _CONTAINER_HEADERS
    }
    fields["in_reply_to"], fields["references"] = (
        parsed.in_reply_to.strip(),
        parsed.references.strip(),
    )
    if not parsed.had_message_id:
        fields["message_id"] = "(generated)"
    return fields


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _header(name: str, value: str) -> dict[str, str]:
    return {"Name": name, "Value": value}


FIXTURE_HEADERS = json.loads(FIXTURE.read_text())["Headers"]

VARIANTS: dict[str, dict[str, Any]] = {
    "recorded payload": {},
    "non-ASCII subject and names": {
        "Subject": "Réunion: überprüfen 日本語 ✓",
        "FromFull": {"Email": "jorg@example.de", "Name": "Jörg Müller", "MailboxHash": ""},
        "ToFull": [{"Email": "agent@acme.multimail.localhost", "Name": "Zoë Agent"}],
        "TextBody": "Grüße\r\naus Köln ✓",
        "HtmlBody": "<p>Grüße <b>aus</b> Köln</p>",
    },
    "names with specials and quotes": {
        "FromFull": {"Email": "john@example.org", "Name": 'Doe, John "JD" Q.'},
        "ToFull": [
            {"Email": "agent@acme.multimail.localhost", "Name": "Acme (agent)"},
            {"Email": "second@acme.multimail.localhost", "Name": ""},
        ],
        "CcFull": [
            {"Email": "a@example.org", "Name": "A"},
            {"Email": "b@example.org", "Name": "B\\C"},
        ],
        "BccFull": [{"Email": "hidden@acme.multimail.localhost", "Name": "Hidden"}],
    },
    "reply with threading headers": {
        "Subject": "Re: Test subject",
        "Headers": [
            _header("Return-Path", "<bounce@postmarkapp.com>"),
            _header("Received", "by mx.example with SMTP id abc; Fri, 1 Aug 2014 16:45:32"),
            _header("DKIM-Signature", "v=1; a=rsa-sha256; d=example.org; b=abc"),
            _header("Message-ID", "<reply-1@example.org>"),
            _header("In-Reply-To", "<orig-1@acme.multimail.localhost>"),
            _header(
                "References", "<orig-0@acme.multimail.localhost> <orig-1@acme.multimail.localhost>"
            ),
            _header("X-Mailer", "  padded value  "),
            _header("X-Encoded", "=?utf-8?q?caf=C3=A9?= au lait"),
            _header("X-Long", "word " * 60),
            _header("Thread-Topic", "Überprüfung"),
            _header("List-Unsubscribe", "<mailto:u@example.org>, <https://example.org/u>"),
            _header("Sender", "Bulk Sender <bulk@example.org>"),
            _header("x-spam-status", "Yes, score=7.1"),
        ],
        "Date": "Fri, 01 Aug 2014 16:45:32 +0200",
        "ReplyTo": "Support Team <help@other.example>",
    },
    "no message id, no date, no reply-to": {
        "Headers": [h for h in FIXTURE_HEADERS if h["Name"] != "Message-ID"],
        "Date": "",
        "ReplyTo": "",
    },
    "headers carrying date and reply-to": {
        "Headers": [
            *FIXTURE_HEADERS,
            _header("Date", "Sat, 2 Aug 2014 10:00:00 +0000"),
            _header("Reply-To", "other@example.net"),
        ],
    },
    "html only": {"TextBody": "", "HtmlBody": "<h1>Hi</h1><p>Only <a href='x'>html</a></p>"},
    "text only": {"HtmlBody": "", "TextBody": "  plain text  \n"},
    "null bodies and subject": {"TextBody": None, "HtmlBody": None, "Subject": None},
    "missing address lists and from": {
        "FromFull": None,
        "ToFull": None,
        "CcFull": None,
        "BccFull": None,
        "Subject": "",
    },
    "attachments of every kind": {
        "Attachments": [
            {
                "Name": "report.pdf",
                "Content": _b64(b"%PDF-1.7\x00\xff binary"),
                "ContentType": "application/pdf",
                "ContentLength": 18,
            },
            {
                "Name": "report.pdf",
                "Content": _b64(b"second copy"),
                "ContentType": "Application/PDF; name=report.pdf",
                "ContentLength": 11,
            },
            {
                "Name": "logo.png",
                "Content": _b64(b"\x89PNG\x1a\x00"),
                "ContentType": "image/png",
                "ContentID": "logo@example.org",
            },
            {"Name": "", "Content": _b64(b"unnamed"), "ContentType": "application/octet-stream"},
            {
                "Content": _b64(b"BEGIN:VCALENDAR"),
                "ContentType": "text/calendar",
                "ContentID": "cal",
            },
            {
                "Name": "notes.txt",
                "Content": _b64("ünïcode".encode()),
                "ContentType": "text/plain",
                "ContentID": "",
            },
            {
                "Name": "Résumé  (final)\r\nv2.docx",
                "Content": _b64(b"docx"),
                "ContentType": "application/msword",
            },
            {"Name": "dir/evil\\name.exe", "Data": _b64(b"MZ"), "ContentType": "bogus"},
            {"Name": "x" * 250 + ".bin", "Content": _b64(b"z"), "ContentType": "application/zip"},
        ],
    },
}


@pytest.mark.parametrize("changes", VARIANTS.values(), ids=VARIANTS.keys())
def test_postmark_fields_parse_like_the_equivalent_mime(changes: dict[str, Any]) -> None:
    payload = _payload(**changes)
    assert _comparable(postmark_message_parse(payload)) == _comparable(_via_mime(payload))


def test_attachments_keep_their_exact_bytes_and_type() -> None:
    """What the rebuilt MIME got wrong: CRLF in binary content became LF, and a long type
    next to a non-ASCII file name came back with a blank in it."""
    content = bytes(range(256)) * 3
    docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    payload = _payload(
        Attachments=[
            {"Name": "all.bin", "Content": _b64(content), "ContentType": "image/x"},
            {"Name": "Résumé final.docx", "Content": _b64(b"PK"), "ContentType": docx},
            {"Name": "empty.txt", "Content": "", "ContentType": "text/plain"},
        ]
    )
    attachments = postmark_message_parse(payload).attachments
    assert [(a.filename, a.content_type, a.content) for a in attachments] == [
        ("all.bin", "image/x", content),
        ("Résumé final.docx", docx, b"PK"),
        ("empty.txt", "text/plain", b""),
    ]


@pytest.mark.parametrize(
    "changes",
    [
        {"Attachments": [{"Name": "a.txt", "Content": "not base64!", "ContentType": "text/x"}]},
        {"Attachments": [{"Name": "a.txt", "ContentType": "text/plain"}]},
        {"FromFull": {"Email": "not an address", "Name": ""}},
        {"Headers": [{"Name": "X-Only-Name"}]},
        {"ToFull": "agent@acme.multimail.localhost"},
    ],
)
def test_malformed_fields_raise_what_the_webhook_answers_400_for(changes: dict[str, Any]) -> None:
    with pytest.raises((ValueError, KeyError, TypeError, AttributeError)):
        postmark_message_parse(_payload(**changes))
