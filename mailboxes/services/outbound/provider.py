"""Handing a built message to the configured mailer, and what its errors mean.

Every failure of the provider (an ESP's API through anymail) or of an SMTP relay becomes
one of two errors: ``TransientSendError`` (5xx, 429, timeouts, lost connections: the
deliver task retries) or ``PermanentSendError`` (the message was refused: retrying would
fail the same way, the email is ``send_failed``).
"""

from __future__ import annotations

import smtplib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from anymail.backends.base import AnymailBaseBackend
from anymail.exceptions import AnymailError, AnymailRequestsAPIError
from django.conf import settings
from django.core.mail import mailers
from django.core.mail.backends.base import BaseEmailBackend
from django.core.signals import setting_changed
from django.dispatch import receiver

from mailboxes.backends import SMTPRelayBackend
from mailboxes.services.outbound.message import BuiltMessage


class TransientSendError(Exception):
    """The provider or relay failed in a way worth retrying (5xx, timeout, connection)."""


class PermanentSendError(Exception):
    """The provider refused the message; retrying would fail the same way."""


# The process's one mailer, kept with its connection open (an SMTP session, an ESP's HTTP
# keep-alive session) from email to email, and closed when the worker stops.
_mailer: BaseEmailBackend | None = None
_mailer_lock = threading.Lock()


def mailer() -> BaseEmailBackend:
    global _mailer
    with _mailer_lock:
        if _mailer is None:
            _mailer = mailers["default"]
        return _mailer


def mailer_close() -> None:
    """End the kept connection (QUIT for SMTP); the next send opens a new one."""
    global _mailer
    with _mailer_lock:
        kept, _mailer = _mailer, None
    if kept is not None:
        kept.close()


@receiver(setting_changed)
def _mailer_follows_settings(*, setting: str, **_: Any) -> None:
    # Tests swap MAILERS: the kept instance belongs to the old configuration.
    if setting == "MAILERS":
        mailer_close()


def provider_send(built: BuiltMessage, remote: list[str]) -> str:
    """Send through the configured mailer to ``remote`` only; returns the provider's id."""
    connection = mailer()
    message = built.message
    remote_set = {address.lower() for address in remote}
    if isinstance(connection, SMTPRelayBackend):
        # The bytes local recipients get, flattened once: the To and Cc headers name
        # everyone, the envelope only the remote recipients (Bcc is never a header).
        return _relay(connection, built, remote)
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
    with _send_errors():
        # Opened here, send_messages leaves the connection open for the next email.
        connection.open()
        accepted = connection.send_messages([message])
    if not accepted:
        # A mailer that sent nothing without raising (fail-silent backends) must not let the
        # email be marked sent: retry it like any other transient failure.
        raise TransientSendError("the mailer reported that it sent nothing")
    status = getattr(message, "anymail_status", None)
    provider_id = getattr(status, "message_id", None)
    if isinstance(provider_id, set):
        provider_id = ",".join(sorted(str(item) for item in provider_id if item))
    return "" if provider_id is None else str(provider_id)


def _relay(connection: SMTPRelayBackend, built: BuiltMessage, remote: list[str]) -> str:
    with _send_errors():
        connection.send_raw(from_email=built.message.from_email, recipients=remote, raw=built.raw)
    return ""  # an SMTP relay gives no id of its own (the Message-ID is ours)


@contextmanager
def _send_errors() -> Iterator[None]:
    """Every mailer error as TransientSendError or PermanentSendError."""
    try:
        yield
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
