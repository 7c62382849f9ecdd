"""The mail backends of this project: the embedded default's outbox (every outgoing
message becomes an .eml file) and the SMTP relay backend that keeps its connection."""

from __future__ import annotations

import re
import smtplib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.mail.backends import smtp
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.message import EmailMessage

from multimail.ids import new_id


class OutboxFileBackend(BaseEmailBackend):
    """Writes one RFC 5322 file per message under MULTIMAIL_OUTBOX_DIR.

    File names start with a time-ordered id, so a directory listing reads in send order.
    The file is written under a temporary name and renamed, so readers never see half of it.
    """

    def __init__(self, *, directory: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.directory = Path(directory or settings.MULTIMAIL_OUTBOX_DIR)

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        self.directory.mkdir(parents=True, exist_ok=True)
        sent = 0
        for message in email_messages:
            name = new_id()
            temporary = self.directory / f".{name}.tmp"
            temporary.write_bytes(message.message().as_bytes())
            temporary.rename(self.directory / f"{name}.eml")
            sent += 1
        return sent


# An addr-spec with a dot-atom local part and a domain of ASCII labels: what Django's
# prep_address returns for it is the address itself (nothing to quote, encode or refuse).
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
PLAIN_ADDR_SPEC = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*")


class SMTPRelayBackend(smtp.EmailBackend):
    """Django's SMTP backend with one connection kept open from message to message.

    Connecting, EHLO (with STARTTLS and AUTH where the relay wants them) and QUIT cost more
    than sending a small message, so the worker process keeps one instance
    (``provider.mailer``) and its connection. Before each message a RSET both clears the
    session and proves the connection alive: a relay that closed an idle connection is
    reconnected to before anything is sent. A connection that fails during a send is
    dropped, and the error reaches the caller, who decides whether to retry: a message
    whose DATA was cut off may have been taken, so it is never resent here.
    """

    def send_raw(self, *, from_email: str, recipients: Sequence[str], raw: bytes) -> None:
        """Send an already flattened message (CRLF line endings) to ``recipients``."""
        with self._lock:
            if self.connection is not None and not self._session_reset():
                self.close()
            self.open()
            connection = self.connection
            assert connection is not None  # open() raises rather than fail silently
            try:
                connection.sendmail(
                    self.prep_address(from_email),
                    [self.prep_address(address) for address in recipients],
                    raw,
                )
            except smtplib.SMTPResponseException as error:
                # The relay answered (smtplib reset the session): it is still usable,
                # unless the relay is closing it.
                if error.smtp_code == 421:
                    self._drop()
                raise
            except smtplib.SMTPRecipientsRefused:
                raise  # answered too, and reset
            except Exception:
                self._drop()
                raise

    def prep_address(self, address: Any, force_ascii: bool = True) -> str:
        """Django's, without parsing the address when it is a plain addr-spec: parsing
        (the email package's header parser) cost more than the rest of handing a message
        to the relay, for every envelope address."""
        if isinstance(address, str) and PLAIN_ADDR_SPEC.fullmatch(address):
            return address
        return str(super().prep_address(address, force_ascii))

    def _session_reset(self) -> bool:
        assert self.connection is not None
        try:
            code, _ = self.connection.rset()
        except (smtplib.SMTPException, OSError):
            return False
        return code == 250

    def _drop(self) -> None:
        """Forget a connection that cannot be trusted any more, without a QUIT it would
        not answer."""
        if self.connection is not None:
            try:
                self.connection.close()
            finally:
                self.connection = None
