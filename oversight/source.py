"""The raw source of an outbound email, as the operator may read it before deciding."""

from __future__ import annotations

from mailboxes.models import Email
from mailboxes.services.outbound.message import message_build
from oversight import policy


def email_raw_source(*, email: Email) -> str:
    """The message as it would leave now, headers and MIME parts, built by the function
    delivery uses. Bcc is never a header, so Bcc recipients are not in the source."""
    copy_operator = policy.outbound_decision(email.mailbox.oversight_mode).copy_operator
    try:
        built = message_build(email=email, copy_operator=copy_operator)
        return built.message.message().as_bytes().decode("utf-8", errors="replace")
    except ValueError as error:  # a header the email package refuses (CR, LF)
        # Delivery would fail the same way: say so instead of failing the page.
        return f"This message cannot be built, so approving it would not send it: {error}\n"
