"""Handing a built message to the configured mailer, and what its errors mean.

Every failure of the provider (an ESP's API through anymail) or of an SMTP relay becomes
one of two errors: ``TransientSendError`` (5xx, 429, timeouts, lost connections: the
deliver task retries) or ``PermanentSendError`` (the message was refused: retrying would
fail the same way, the email is ``send_failed``).
"""

from __future__ import annotations

import smtplib

from anymail.backends.base import AnymailBaseBackend
from anymail.exceptions import AnymailError, AnymailRequestsAPIError
from django.conf import settings
from django.core.mail import mailers

from mailboxes.services.outbound.message import BuiltMessage


class TransientSendError(Exception):
    """The provider or relay failed in a way worth retrying (5xx, timeout, connection)."""


class PermanentSendError(Exception):
    """The provider refused the message; retrying would fail the same way."""


def provider_send(built: BuiltMessage, remote: list[str]) -> str:
    """Send through the configured mailer to ``remote`` only; returns the provider's id."""
    connection = mailers["default"]
    message = built.message
    remote_set = {address.lower() for address in remote}
    if isinstance(connection, AnymailBaseBackend):
        # ESP APIs take the header recipients as the delivery list: local recipients are
        # left out (they already have their copy), and Postmark needs the message stream.
        message.to = [a for a in built.to if a.lower() in remote_set]
        message.cc = [a for a in built.cc if a.lower() in remote_set]
        message.bcc = [a for a in built.bcc if a.lower() in remote_set]
        message.esp_extra = {"MessageStream": settings.POSTMARK_MESSAGE_STREAM}  # type: ignore[attr-defined]
    else:
        # SMTP-style backends send to message.recipients() but print the To/Cc headers as
        # given: everyone sees the full recipient lists, only remote ones get this copy.
        if built.to:
            message.extra_headers["To"] = ", ".join(built.to)
        if built.cc:
            message.extra_headers["Cc"] = ", ".join(built.cc)
        message.to = [a for a in built.to if a.lower() in remote_set]
        message.cc = [a for a in built.cc if a.lower() in remote_set]
        message.bcc = [a for a in built.bcc if a.lower() in remote_set]
    try:
        accepted = connection.send_messages([message])
    except AnymailRequestsAPIError as error:
        if error.status_code is None or error.status_code >= 500 or error.status_code == 429:
            raise TransientSendError(str(error)) from error
        raise PermanentSendError(str(error)) from error
    except AnymailError as error:
        raise PermanentSendError(str(error)) from error
    except smtplib.SMTPResponseException as error:
        if 400 <= error.smtp_code < 500:
            raise TransientSendError(f"{error.smtp_code} {error.smtp_error!r}") from error
        raise PermanentSendError(f"{error.smtp_code} {error.smtp_error!r}") from error
    except smtplib.SMTPRecipientsRefused as error:
        raise PermanentSendError(f"recipients refused: {sorted(error.recipients)}") from error
    except (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, OSError) as error:
        raise TransientSendError(f"{type(error).__name__}: {error}") from error
    if not accepted:
        # A mailer that sent nothing without raising (fail-silent backends) must not let the
        # email be marked sent: retry it like any other transient failure.
        raise TransientSendError("the mailer reported that it sent nothing")
    status = getattr(message, "anymail_status", None)
    provider_id = getattr(status, "message_id", None)
    if isinstance(provider_id, set):
        provider_id = ",".join(sorted(str(item) for item in provider_id if item))
    return "" if provider_id is None else str(provider_id)
