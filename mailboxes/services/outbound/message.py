"""Building the MIME message of an outbound email, as every recipient sees it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import formataddr, formatdate

from django.core.mail import EmailMultiAlternatives
from django.utils.html import escape, linebreaks

from mailboxes.models import Email
from mailboxes.services import compliance


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


@dataclass(frozen=True, slots=True)
class BuiltMessage:
    message: EmailMultiAlternatives
    to: list[str]
    cc: list[str]
    bcc: list[str]

    @property
    def recipients(self) -> list[str]:
        return _unique([*self.to, *self.cc, *self.bcc])


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
    message = EmailMultiAlternatives(
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
    for attachment in email.attachments.all():
        message.attach(attachment.filename, bytes(attachment.content), attachment.content_type)
    # ESPs echo metadata on their delivery events: that is how bounces find this email
    # (services.delivery_events), sturdier than matching provider message ids.
    message.metadata = {"email_id": email.pk}  # type: ignore[attr-defined]
    return BuiltMessage(message=message, to=to, cc=cc, bcc=bcc)
