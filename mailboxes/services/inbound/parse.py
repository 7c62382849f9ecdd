"""Reading an arriving message: MIME bytes or Postmark's parsed JSON into one ``ParsedMessage``.

The SMTP listener and local delivery hand the exact MIME bytes (``message_parse``); the
Postmark inbound webhook hands its JSON payload, which Postmark already parsed
(``postmark_message_parse``: re-parsing MIME rebuilt from that JSON cost more than the
rest of the request). Both give the same message for the same mail.
"""

from __future__ import annotations

import re
from base64 import b64decode
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from email import policy
from email.headerregistry import Address, HeaderRegistry
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, make_msgid
from typing import Any

import html2text
from anymail.utils import EmailAddress
from django.conf import settings

from mailboxes.services.attachment_safety import attachment_name_normalize

_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM_ADDRESS = re.compile(rf"{_ATEXT}(\.{_ATEXT})*@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*")
# Headers kept on the Email row (the raw trace headers are long and of no use to agents).
_SKIPPED_HEADERS = {"received", "dkim-signature", "arc-seal", "arc-message-signature"}
MAX_STORED_HEADERS = 100


def _message_ids(value: str) -> list[str]:
    return _MESSAGE_ID.findall(value or "")


@dataclass
class ParsedAttachment:
    filename: str
    content_type: str
    content: bytes
    content_id: str = ""


@dataclass
class ParsedMessage:
    """Everything the service needs from the MIME message, extracted once."""

    from_address: str
    to: list[str]
    cc: list[str]
    subject: str
    message_id: str
    in_reply_to: str
    references: str
    html: str
    text: str
    markdown: str
    reply_to: str
    has_date: bool
    headers: dict[str, str]
    attachments: list[ParsedAttachment] = field(default_factory=list)
    had_message_id: bool = True

    @property
    def body_size(self) -> int:
        return sum(len(part.encode()) for part in (self.markdown, self.html, self.text))

    @property
    def referenced_ids(self) -> list[str]:
        ids = _message_ids(self.in_reply_to) + _message_ids(self.references)
        return list(dict.fromkeys(ids))


def _addresses(message: Message, name: str) -> list[str]:
    values = message.get_all(name) or []
    return [addr for _, addr in getaddresses([str(v) for v in values]) if addr]


def _stored_headers(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in items:
        if name.lower() in _SKIPPED_HEADERS or name in headers:
            continue
        if len(headers) >= MAX_STORED_HEADERS:
            break
        headers[name] = value[:2000]
    return headers


def _html_to_markdown(html: str) -> str:
    converter = html2text.HTML2Text()
    converter.body_width = 0  # no hard wrapping: agents reflow text themselves
    converter.ignore_images = False
    converter.unicode_snob = True
    return converter.handle(html).strip()


def _leaf_parts(part: Message) -> Iterator[Message]:
    """Leaf MIME parts in order; a forwarded message (message/rfc822) is one leaf, so it is
    kept whole as an .eml attachment instead of being flattened into ours."""
    if part.get_content_type() == "message/rfc822" or not part.is_multipart():
        yield part
        return
    for sub in part.get_payload():  # type: ignore[union-attr]
        if isinstance(sub, Message):
            yield from _leaf_parts(sub)


def _part_bytes(part: Message) -> bytes:
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload(0)
        return inner.as_bytes() if isinstance(inner, Message) else b""
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _unique_name(name: str, taken: set[str]) -> str:
    candidate, counter = name, 2
    stem, dot, ext = name.rpartition(".")
    while candidate.lower() in taken:
        candidate = f"{stem} ({counter}).{ext}" if dot and stem else f"{name} ({counter})"
        counter += 1
    taken.add(candidate.lower())
    return candidate


def _attachment(
    *,
    index: int,
    filename: str | None,
    content_type: str,
    attached: bool,
    taken: set[str],
    content: bytes,
    content_id: str,
) -> ParsedAttachment | None:
    """The ``index``-th leaf part (1-based, bodies counted) as a stored attachment, named
    uniquely within the message; None for a part that is no attachment."""
    if not filename and not attached and content_type.startswith("text/"):
        return None  # an extra body alternative (e.g. text/calendar without a name)
    if not filename:
        extension = ".eml" if content_type == "message/rfc822" else ".bin"
        filename = f"attachment-{index}{extension}"
    filename = attachment_name_normalize(filename)
    return ParsedAttachment(
        filename=_unique_name(filename, taken),
        content_type=content_type,
        content=content,
        content_id=content_id.strip("<>")[:255],
    )


def _text_of(part: Message | None) -> str:
    if part is None:
        return ""
    try:
        content = part.get_content()  # type: ignore[attr-defined]
    except (LookupError, UnicodeDecodeError):  # unknown or lying charset: best effort
        raw = part.get_payload(decode=True)
        content = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ""
    return _newlines(content) if isinstance(content, str) else ""


def _newlines(text: str) -> str:
    # Mail carries CRLF line ends (SMTP always does); stored text and what the API returns
    # use "\n", as a body sent through the API does.
    return text.replace("\r\n", "\n").replace("\r", "\n")


def message_parse(raw: bytes) -> ParsedMessage:
    message: EmailMessage = BytesParser(policy=policy.default).parsebytes(raw)  # type: ignore[assignment]
    html_part = message.get_body(preferencelist=("html",))
    text_part = message.get_body(preferencelist=("plain",))
    if html_part is not None and html_part.get_content_type() != "text/html":
        html_part = None
    if text_part is not None and text_part.get_content_type() != "text/plain":
        text_part = None
    html, text = _text_of(html_part), _text_of(text_part)
    markdown = _html_to_markdown(html) if html else text.strip()

    attachments: list[ParsedAttachment] = []
    taken: set[str] = set()
    for index, part in enumerate(_leaf_parts(message), start=1):
        if part is html_part or part is text_part:
            continue
        attachment = _attachment(
            index=index,
            filename=part.get_filename(),
            content_type=part.get_content_type(),
            attached=part.get_content_disposition() == "attachment",
            taken=taken,
            content=_part_bytes(part),
            content_id=str(part.get("Content-ID", "") or ""),
        )
        if attachment is not None:
            attachments.append(attachment)
    headers = _stored_headers((name, str(value)) for name, value in message.items())

    from_list = _addresses(message, "From")
    raw_message_id = _message_ids(str(message.get("Message-ID", "")))
    reply_to = _addresses(message, "Reply-To")
    return ParsedMessage(
        from_address=from_list[0] if from_list else "",
        to=_addresses(message, "To"),
        cc=_addresses(message, "Cc"),
        subject=str(message.get("Subject", "") or "")[:998],
        # A message without a Message-ID still gets one, so replies to it can thread.
        message_id=raw_message_id[0] if raw_message_id else make_msgid(domain=settings.MAIL_DOMAIN),
        had_message_id=bool(raw_message_id),
        in_reply_to=str(message.get("In-Reply-To", "") or "")[:998],
        references=str(message.get("References", "") or ""),
        html=html,
        text=text,
        markdown=markdown,
        reply_to=reply_to[0] if reply_to else "",
        has_date=message.get("Date") is not None,
        headers=headers,
        attachments=attachments,
    )


# Headers the standard library parses into structured values (addresses, dates, MIME
# parameters); the others, Subject included, are unstructured text.
_STRUCTURED_HEADERS = frozenset(HeaderRegistry().registry) - {"subject"}


def _header_text(name: str, value: str) -> str:
    """``value`` as ``message_parse`` reads that header from MIME: line breaks unfolded,
    structured headers normalized, encoded words decoded, surrounding blanks (which line
    folding moves around) dropped. Plain unstructured text, the common case, skips the
    costly header parser."""
    value = "".join(value.splitlines()).strip()
    structured = name.lower() in _STRUCTURED_HEADERS
    if value.isascii() and "=?" not in value and not structured:
        return value
    if name.lower() == "message-id" and _MESSAGE_ID.fullmatch(value):
        return value  # a well-formed Message-ID reads back verbatim
    return str(policy.default.header_factory(name, value)).strip()


def _first(items: list[tuple[str, str]], name: str) -> str:
    name = name.lower()
    return next((value for key, value in items if key.lower() == name), "")


def _mime_type(content_type: str) -> str:
    """The type of a Content-Type value, read as ``Message.get_content_type`` reads it."""
    mime_type = content_type.split(";", 1)[0].strip().lower()
    return mime_type if mime_type.count("/") == 1 else "text/plain"


def _postmark_address(name: str, email: str) -> Address:
    # A plain dot-atom address is taken apart directly: parsing it is the costly part of
    # building an Address, and gives the same parts.
    if _DOT_ATOM_ADDRESS.fullmatch(email):
        username, _, domain = email.partition("@")
        return Address(name or "", username, domain)
    return EmailAddress(name, email)


def _postmark_addresses(full: Iterable[Mapping[str, str]]) -> list[Address]:
    return [_postmark_address(item.get("Name", ""), item.get("Email", "")) for item in full]


def _base64_content(part: Mapping[str, Any]) -> bytes:
    # Postmark's own name is "Content"; its test payloads say "Data". Strict: a corrupted
    # attachment is refused (binascii.Error, a ValueError) rather than stored truncated.
    encoded = part["Content"] if "Content" in part else part["Data"]
    return b64decode("".join(encoded.split()), validate=True)


def _utf8_text(value: str | None) -> str:
    # As a UTF-8 MIME part of this text decodes: an escaped undecodable byte becomes U+FFFD.
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace") if value else ""


def postmark_message_parse(payload: Mapping[str, Any]) -> ParsedMessage:
    """The message of a Postmark inbound payload without RawEmail, from the fields Postmark
    already parsed: what ``message_parse`` gives for the MIME message those fields describe
    (From/To/Cc/Bcc, Subject, then Postmark's Headers, then Date and Reply-To), without
    building and re-parsing that MIME. A malformed payload raises ValueError, KeyError,
    TypeError or AttributeError."""
    postmark_headers = payload.get("Headers", [])
    # Postmark prepends the envelope sender as Return-Path: not a header of the message.
    if postmark_headers and postmark_headers[0]["Name"].lower() == "return-path":
        postmark_headers = postmark_headers[1:]
    sender_full = payload.get("FromFull")
    sender = _postmark_addresses([sender_full]) if sender_full is not None else []
    listed = {
        name: _postmark_addresses(payload[key])
        for name, key in (("To", "ToFull"), ("Cc", "CcFull"), ("Bcc", "BccFull"))
        if payload.get(key) is not None
    }
    items = [("From", str(sender[0]) if sender else "")]
    items += [(name, ", ".join(str(address) for address in full)) for name, full in listed.items()]
    subject = payload.get("Subject", "")
    if subject is not None:
        items.append(("Subject", _header_text("Subject", subject)))
    items += [
        (header["Name"], _header_text(header["Name"], header["Value"] or ""))
        for header in postmark_headers
    ]
    # Postmark takes these two out of Headers into fields of their own.
    present = {name.lower() for name, _ in items}
    for name, key in (("Date", "Date"), ("Reply-To", "ReplyTo")):
        if payload.get(key) and name.lower() not in present:
            items.append((name, _header_text(name, payload[key])))

    # Leaf parts come in MIME order: the bodies, inline parts (with a Content-ID), the rest.
    text, html = payload.get("TextBody", ""), payload.get("HtmlBody", "")
    index = 1 + (text is not None) + (html is not None)
    parts = payload.get("Attachments", [])
    inline = [part for part in parts if part.get("ContentID") is not None]
    attachments: list[ParsedAttachment] = []
    taken: set[str] = set()
    for part in [*inline, *(part for part in parts if part.get("ContentID") is None)]:
        name = part.get("Name")
        attachment = _attachment(
            index=index,
            filename=re.sub(r"[\r\n]+", " ", name).strip() if name else None,
            content_type=_mime_type(part["ContentType"]),
            attached=part.get("ContentID") is None,
            taken=taken,
            content=_base64_content(part),
            content_id=part.get("ContentID") or "",
        )
        index += 1
        if attachment is not None:
            attachments.append(attachment)

    html, text = _utf8_text(html), _newlines(_utf8_text(text))
    message_id = _message_ids(_first(items, "Message-ID"))
    reply_to = [
        address
        for _, address in getaddresses([v for k, v in items if k.lower() == "reply-to"])
        if address
    ]
    return ParsedMessage(
        from_address=sender[0].addr_spec if sender else "",
        to=[address.addr_spec for address in listed.get("To", []) if address.addr_spec],
        cc=[address.addr_spec for address in listed.get("Cc", []) if address.addr_spec],
        subject=_first(items, "Subject")[:998],
        message_id=message_id[0] if message_id else make_msgid(domain=settings.MAIL_DOMAIN),
        had_message_id=bool(message_id),
        in_reply_to=_first(items, "In-Reply-To")[:998],
        references=_first(items, "References"),
        html=html,
        text=text,
        markdown=_html_to_markdown(html) if html else text.strip(),
        reply_to=reply_to[0] if reply_to else "",
        has_date=any(name.lower() == "date" for name, _ in items),
        headers=_stored_headers(items),
        attachments=attachments,
    )
