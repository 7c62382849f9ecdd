"""Building the MIME message of an outbound email, as every recipient sees it."""

from __future__ import annotations

import email.policy
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.policy import EmailPolicy
from email.utils import formataddr, formatdate
from functools import cached_property, lru_cache
from typing import Any

from django.core.mail import EmailMultiAlternatives
from django.utils.html import escape, linebreaks

from mailboxes.models import Email
from mailboxes.services import compliance
from mailboxes.services.outbound.headers import OUTBOUND_HEADERS


def _unique(addresses: Sequence[str], exclude: set[str] | None = None) -> list[str]:
    seen = set(exclude or ())
    result = []
    for address in addresses:
        key = address.lower()
        if address and key not in seen:
            seen.add(key)
            result.append(address)
    return result


def _footer_html(footer: str) -> str:
    return f'<hr><div class="mm-footer">{linebreaks(escape(footer))}</div>'


class OutboundMessage(EmailMultiAlternatives):
    """Django's message with the two things receivers need kept exact: structured headers
    written raw (``headers.RawFoldedHeader``) and every attachment base64-encoded.

    Django encodes a text attachment as text: it normalizes its line endings and adds a
    final newline, so the recipient's bytes differ from the sender's. Base64 carries any
    bytes through any relay unchanged. ESP backends (anymail) read ``attachments`` itself,
    not this MIME, and send the same bytes base64-encoded in their API.
    """

    def message(self, *, policy: Any = None) -> EmailMessage:
        # Every backend (file outbox, SMTP, local delivery) passes or defaults its policy;
        # the header registry is swapped in whichever it is.
        base = email.policy.default if policy is None else policy
        built: EmailMessage = super().message(policy=_outbound_policy(base))
        for part in built.walk():
            if part.is_multipart() and part.get_boundary() is None:
                # The generator would pick one at random and compile a regular expression
                # for it to make sure no line of the parts is the boundary; with 128 random
                # bits no content can hold it by chance, nor a sender guess it.
                part.set_boundary(f"=_mm{secrets.token_hex(16)}")
        return built

    def _add_attachment(
        self, msg: EmailMessage, filename: Any, content: Any, mimetype: Any
    ) -> None:
        header = Message()
        header["Content-Type"] = str(mimetype)
        maintype, subtype = header.get_content_maintype(), header.get_content_subtype()
        params = dict((header.get_params() or [])[1:])
        if maintype == "message":
            # RFC 2046 5.2.1: a message/rfc822 part may not be base64-encoded; it is
            # written as the message it is.
            super()._add_attachment(msg, filename, content, mimetype)  # type: ignore[misc]
            return
        # attach() turned UTF-8 text into str (and other text into octet-stream bytes):
        # encoding the str again gives the exact bytes back.
        data = content.encode() if isinstance(content, str) else bytes(content)
        if isinstance(content, str):
            params.setdefault("charset", "utf-8")
        msg.add_attachment(
            data,
            maintype=maintype,
            subtype=subtype,
            filename=filename,
            cte="base64",
            params=params or None,
        )


@lru_cache(maxsize=8)
def _outbound_policy(base: EmailPolicy[Any]) -> EmailPolicy[Any]:
    """``base`` with the outbound header registry: one policy object per base (policies
    are immutable), so that a kept header's fold under it is reused (headers._KeptFold)."""
    return base.clone(header_factory=OUTBOUND_HEADERS)


@dataclass(frozen=True)
class BuiltMessage:
    message: EmailMultiAlternatives
    to: list[str]
    cc: list[str]
    bcc: list[str]

    @property
    def recipients(self) -> list[str]:
        return _unique([*self.to, *self.cc, *self.bcc])

    @cached_property
    def raw(self) -> bytes:
        """The message flattened for the wire (CRLF, SMTP folding), once: the relay and
        this server's own recipients get these bytes. Flattening (header folding above
        all) was a fifth of a delivery, and it used to run twice."""
        return self.message.message(policy=email.policy.SMTP).as_bytes()


def message_build(*, email: Email, copy_operator: bool) -> BuiltMessage:
    """The MIME message as every recipient sees it (Bcc is never a header)."""
    mailbox = email.mailbox
    to = _unique(email.to)
    cc = _unique(
        [*email.cc, *([mailbox.auto_cc] if mailbox.auto_cc else [])], set(map(str.lower, to))
    )
    operator_copy = [email.account.oversight_email] if copy_operator else []
    bcc = _unique(
        [*email.bcc, *([mailbox.auto_bcc] if mailbox.auto_bcc else []), *operator_copy],
        {a.lower() for a in [*to, *cc]},
    )
    headers = {
        "Message-ID": email.message_id,
        "Date": formatdate(usegmt=True),
        **compliance.outbound_headers(email=email),
    }
    if email.in_reply_to:
        headers["In-Reply-To"] = email.in_reply_to
    if email.references:
        headers["References"] = email.references
    footer = compliance.footer_text(mailbox=mailbox)
    text = email.text or email.markdown
    html = email.html
    if footer:
        text = f"{text.rstrip()}\n\n-- \n{footer}\n"
        html = f"{html}{_footer_html(footer)}"
    message = OutboundMessage(
        subject=email.subject,
        body=text,
        from_email=formataddr((mailbox.display_name, mailbox.address))
        if mailbox.display_name
        else mailbox.address,
        to=to,
        cc=cc,
        bcc=bcc,
        headers=headers,
    )
    if html:
        message.attach_alternative(html, "text/html")
    for attachment in email.attachments.all() if email.has_attachments else ():
        message.attach(attachment.filename, bytes(attachment.content), attachment.content_type)
    # ESPs echo metadata on their delivery events: that is how bounces find this email
    # (services.delivery_events), sturdier than matching provider message ids.
    message.metadata = {"email_id": email.pk}  # type: ignore[attr-defined]
    return BuiltMessage(message=message, to=to, cc=cc, bcc=bcc)
