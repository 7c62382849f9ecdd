"""What goes on the wire, read from the raw bytes of the sent message.

Attachments of every kind (text, binary, CRLF-containing, not UTF-8) arrive byte for byte
on every path: local delivery to another mailbox, the external MIME, the Postmark API,
Postmark's inbound webhook and the SMTP listener; each is read back through the API's
attachment download, as the SDK's ``download_attachment`` does. The structured headers
are raw (never RFC 2047 encoded words) and folded at whitespace; the plain-text
alternative carries no markdown markup.
"""

from __future__ import annotations

import base64
import binascii
import email.policy
import json
import re
import smtplib
import socket
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from mailboxes.models import Direction, Email
from mailboxes.services.attachment_safety import program_kind
from mailboxes.services.outbound.message import message_build
from mailboxes.smtp import smtp_controller
from multimail.ids import new_id
from tests.conftest import Tenant, client_for, key_for
from tests.outbound.conftest import attachment
from tests.reliability.conftest import FakeProvider, fake_postmark  # noqa: F401

SECRET = "postmark:s3cret"
STRUCTURED = ("List-Unsubscribe", "List-Unsubscribe-Post", "X-MultiMail-Identity", "Message-ID")

# The classes of content a transfer tends to change: text, CRLF line ends, a missing final
# newline, bytes that are not UTF-8, arbitrary binary.
contents = st.one_of(
    st.text(min_size=1, max_size=200).map(str.encode),
    # An empty file is no attachment (content_base64 may not be blank): at least one byte.
    st.lists(st.text(max_size=20), min_size=2, max_size=6).map(
        lambda lines: "\r\n".join(lines).encode()
    ),
    st.text(alphabet="é€ab\r\n", min_size=1, max_size=50).map(
        lambda t: t.encode("latin-1", "replace")
    ),
    # A program is refused by the content filter, not sent: binary that is no program.
    st.binary(min_size=1, max_size=300).filter(lambda data: program_kind(data) is None),
)
SAMPLES = [b"hello", b"line one\r\nline two\r\n", b"caf\xe9 cr\xe8me", bytes(range(256))]


def _header_block(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[0]


def raw_headers(raw: bytes) -> dict[str, list[bytes]]:
    """The top-level header lines as written (continuation lines kept), by name."""
    found: dict[str, list[bytes]] = {}
    for field in re.split(rb"\r\n(?![ \t])", _header_block(raw)):
        name, _, _ = field.partition(b":")
        found.setdefault(name.decode(), []).append(field)
    return found


def raw_attachment_parts(raw: bytes) -> list[tuple[bytes, bytes]]:
    """(headers, body) of every part with a filename, split on the boundaries in the bytes."""
    parts = []
    for boundary in re.findall(rb'boundary="([^"]+)"', raw):
        for chunk in raw.split(b"--" + boundary)[1:]:
            headers, _, body = chunk.partition(b"\r\n\r\n")
            if b"filename=" in headers and b"boundary=" not in headers:
                parts.append((headers, body))
    return parts


def download(client: APIClient, mailbox_id: str, received: Email) -> dict[str, bytes]:
    result = {}
    for item in received.attachments.all():
        url = f"/v1/mailboxes/{mailbox_id}/emails/{received.pk}/attachments/{quote(item.filename)}"
        response = client.get(url)
        assert response.status_code == 200, response.content[:200]
        result[item.filename] = response.content
    return result


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def postmark(settings: Any, fake_postmark: FakeProvider) -> FakeProvider:  # noqa: F811
    settings.MAILERS = {"default": {"BACKEND": "anymail.backends.postmark.EmailBackend"}}
    settings.ANYMAIL = {
        **settings.ANYMAIL,
        "POSTMARK_SERVER_TOKEN": "server-token",
        "POSTMARK_API_URL": fake_postmark.url,
        "WEBHOOK_SECRET": SECRET,
    }
    return fake_postmark


def _send_to_local_and_remote(
    send: Callable[..., Any], other: Tenant, content: bytes
) -> tuple[Email, Email]:
    response = send(
        to=[other.mailbox.address, "remote@example.org"],
        subject=f"Report {new_id()}",
        markdown="Hi **there**, external. See [the report](https://example.org/r).",
        attachments=[attachment("data.txt", content, "text/plain"),
                     attachment("blob.bin", content, "application/octet-stream")],
    )  # fmt: skip
    assert response.status_code == 202, response.content[:300]
    sent = Email.objects.get(pk=response.json()["id"])
    received = Email.objects.get(
        mailbox=other.mailbox, direction=Direction.INBOUND, message_id=sent.message_id
    )
    return sent, received


@pytest.mark.django_db
@hypothesis_settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(content=contents)
@example(content=SAMPLES[0])
@example(content=SAMPLES[1])
@example(content=SAMPLES[2])
@example(content=SAMPLES[3])
def test_every_attachment_is_byte_exact_on_every_path(
    send: Callable[..., Any], other: Tenant, postmark: FakeProvider, content: bytes
) -> None:
    sent, received = _send_to_local_and_remote(send, other, content)

    # Local delivery to another mailbox on this server, read back through the API.
    _, other_key = key_for(other.account, "read")
    assert download(client_for(other_key), other.mailbox.pk, received) == {
        "data.txt": content,
        "blob.bin": content,
    }

    # The external MIME, as an SMTP relay gets it: every attachment part is base64 and
    # its body decodes to the sent bytes.
    built = message_build(email=sent, copy_operator=False)
    raw = built.message.message(policy=email.policy.SMTP).as_bytes()
    parts = raw_attachment_parts(raw)
    assert len(parts) == 2
    for headers, body in parts:
        assert b"Content-Transfer-Encoding: base64" in headers, headers
        assert binascii.a2b_base64(body.strip()) == content

    # The Postmark API gets the same bytes, base64 in its JSON.
    [request] = [r for r in postmark.requests if r["json"].get("Subject") == sent.subject]
    assert {
        item["Name"]: base64.b64decode(item["Content"]) for item in request["json"]["Attachments"]
    } == {"data.txt": content, "blob.bin": content}

    # Postmark's inbound webhook: its payload's base64 becomes the stored bytes.
    payload = {
        "FromFull": {"Email": "alice@example.org", "Name": "Alice"},
        "ToFull": [{"Email": other.mailbox.address, "Name": ""}],
        "OriginalRecipient": other.mailbox.address,
        "Subject": "Inbound copy",
        "MessageID": new_id(),
        "TextBody": "Hi",
        "Headers": [{"Name": "Message-ID", "Value": f"<{new_id()}@example.org>"}],
        "Attachments": [
            {"Name": "in.dat", "Content": base64.b64encode(content).decode(),
             "ContentType": "application/octet-stream", "ContentLength": len(content)},
        ],
    }  # fmt: skip
    answer = APIClient().post(
        "/v1/webhooks/postmark-inbound",
        json.dumps(payload),
        content_type="application/json",
        HTTP_AUTHORIZATION="Basic " + base64.b64encode(SECRET.encode()).decode(),
    )
    assert answer.json() == {"received": True, "processed": 1}, answer.content
    inbound = Email.objects.get(mailbox=other.mailbox, subject="Inbound copy")
    assert download(client_for(other_key), other.mailbox.pk, inbound) == {"in.dat": content}
    inbound.delete()


message_ids = st.tuples(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-_+", min_size=1, max_size=120),
    st.sampled_from(["example.org", "mail.example.com"]),
).map(lambda parts: f"<{parts[0]}@{parts[1]}>")


@pytest.mark.django_db
@hypothesis_settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(references=st.lists(message_ids, min_size=1, max_size=25))
@example(references=[f"<{i}.{'r' * 30}@example.org>" for i in range(6)])
def test_structured_headers_are_raw_and_folded(
    send: Callable[..., Any], other: Tenant, references: list[str]
) -> None:
    sent, _ = _send_to_local_and_remote(send, other, b"x")
    sent.references = " ".join(references)
    raw = (
        message_build(email=sent, copy_operator=False)
        .message.message(policy=email.policy.SMTP)
        .as_bytes()
    )
    headers = raw_headers(raw)
    for name in (*STRUCTURED, "References"):
        [line] = headers[name]
        assert b"=?" not in line, line
        for row in line.split(b"\r\n"):
            assert len(row) <= 998
            # Over 78 characters only when one word alone is that long.
            assert len(row) <= 78 or len(row.split()) <= 2 - row.startswith(b" "), row
        # Folding only ever inserts CRLF before existing whitespace.
        unfolded = re.sub(rb"\r\n(?=[ \t])", b"", line).decode()
        assert unfolded.startswith(f"{name}: ")
    unsubscribe = re.sub(rb"\r\n(?=[ \t])", b"", headers["List-Unsubscribe"][0]).decode()
    assert re.fullmatch(
        r"List-Unsubscribe: <https?://[^>]+/v1/unsubscribe/[^>]+>, <mailto:[^>]+>", unsubscribe
    )
    assert headers["List-Unsubscribe-Post"] == [
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click"
    ]
    assert re.sub(rb"\r\n(?=[ \t])", b"", headers["References"][0]).decode() == (
        f"References: {sent.references}"
    )
    assert re.sub(rb"\r\n(?=[ \t])", b"", headers["Message-ID"][0]).decode() == (
        f"Message-ID: {sent.message_id}"
    )
    if len(f"References: {sent.references}") > 78 and len(references) > 1:
        assert headers["References"][0].count(b"\r\n ") >= 1


words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=10)


@pytest.mark.django_db
@hypothesis_settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    pieces=st.lists(
        st.tuples(
            st.sampled_from(
                ["**{}**", "*{}*", "_{}_", "`{}`", "~~{}~~", "[{}](https://example.org/{})", "{}"]
            ),
            words,
        ),
        min_size=1,
        max_size=8,
    )
)
def test_the_plain_text_part_is_readable(
    send: Callable[..., Any], owner: Tenant, pieces: list[tuple[str, str]]
) -> None:
    markdown = " ".join(template.format(word, word) for template, word in pieces)
    response = send(subject=f"Text {new_id()}", markdown=f"# Heading\n\n{markdown}")
    assert response.status_code == 202, response.content[:300]
    sent = Email.objects.get(pk=response.json()["id"])
    raw = (
        message_build(email=sent, copy_operator=False)
        .message.message(policy=email.policy.SMTP)
        .as_bytes()
    )
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    text = parsed.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "Heading" in text
    assert "#" not in text
    for marker in ("**", "~~", "`", "](", "\\"):
        assert marker not in text, text
    for template, word in pieces:
        assert word in text
        if template.startswith("["):
            assert f"{word} (https://example.org/{word})" in text


@pytest.fixture
def listener() -> Iterator[int]:
    port = _free_port()
    controller = smtp_controller(host="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("content", SAMPLES, ids=["text", "crlf", "latin-1", "binary"])
def test_the_smtp_listener_keeps_every_byte(
    send: Callable[..., Any], other: Tenant, listener: int, content: bytes
) -> None:
    """Our own external MIME, handed to this server's SMTP listener, arrives exactly."""
    sent, _ = _send_to_local_and_remote(send, other, content)
    raw = (
        message_build(email=sent, copy_operator=False)
        .message.message(policy=email.policy.SMTP)
        .as_bytes()
    )
    raw = raw.replace(sent.message_id.encode(), f"<{new_id()}@example.org>".encode())
    with smtplib.SMTP("127.0.0.1", listener, timeout=10) as client:
        client.sendmail("alice@example.org", [other.mailbox.address], raw)
    received = Email.objects.filter(mailbox=other.mailbox).exclude(message_id=sent.message_id).get()
    _, other_key = key_for(other.account, "read")
    assert download(client_for(other_key), other.mailbox.pk, received) == {
        "data.txt": content,
        "blob.bin": content,
    }
