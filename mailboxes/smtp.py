"""The built-in SMTP listener: inbound mail for this server's mailboxes, and submission.

Inbound (no AUTH): unknown recipients are refused at RCPT time (550), so the sending
server bounces the mail to its author instead of us accepting and silently dropping it,
and no address elsewhere is accepted: the listener relays nothing. DATA hands the exact
bytes to ``inbound_receive``, the same service the Postmark webhook uses.

Submission (after AUTH PLAIN or LOGIN: the mailbox address and an API key with the send
scope): MAIL FROM must be that mailbox, any recipient is taken, and DATA hands the message
to ``submission_accept``, the send endpoint's accept path. The reply carries the outcome:
250 with the email's id, or the catalog code of the refusal. AUTH needs STARTTLS unless
the listener is bound to loopback.

Database work runs in worker threads (the SMTP session is asyncio) with stale
connections closed around it.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import logging
import ssl
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, Session, _Missing
from asgiref.sync import sync_to_async
from django.db import close_old_connections, connection

from mailboxes.services.inbound.receive import inbound_accepts, inbound_receive
from mailboxes.services.outbound.submission import (
    Submitter,
    submission_accept,
    submission_authenticate,
)
from mailboxes.smtp_tls import smtp_tls_context
from multimail.errors import ApiError
from oversight.policy import outbound_decision

logger = logging.getLogger("multimail.smtp")

# Larger than the 10 MB attachment cap once MIME's base64 overhead is added.
MAX_MESSAGE_BYTES = 25 * 1024 * 1024


def _one_line(error: ApiError) -> str:
    """``code: message`` on one line (a reply line cannot break), with each field's issue."""
    text = error.message
    if error.errors:
        text += " " + "; ".join(f"{issue['field']}: {issue['message']}" for issue in error.errors)
    return f"{error.code}: {' '.join(text.split())}"


def _refusal(error: ApiError) -> str:
    """The reply for a refused submission: temporary (4xx) when the catalog says retry."""
    if error.entry.is_retryable:
        return f"451 4.7.0 {_one_line(error)}"
    if error.code == "payload_too_large":
        return f"552 5.3.4 {_one_line(error)}"
    return f"554 5.7.1 {_one_line(error)}"


# The work runs on whichever executor thread is free, and an idle thread would otherwise
# keep its database connection open indefinitely: each call opens and closes its own.
def _accepts(address: str) -> bool:
    close_old_connections()
    try:
        return inbound_accepts(address)
    finally:
        connection.close()


def _deliver(raw: bytes, recipients: list[str]) -> int:
    close_old_connections()
    try:
        return len(inbound_receive(raw=raw, recipients=recipients, source="smtp"))
    finally:
        connection.close()


def _login(login: str, password: str, client_ip: str) -> AuthResult:
    close_old_connections()
    try:
        submitter = submission_authenticate(login=login, password=password, client_ip=client_ip)
    except ApiError as error:
        logger.info("smtp_auth_refused code=%s peer=%s", error.code, client_ip)
        status = "454 4.7.0" if error.code == "too_many_attempts" else "535 5.7.8"
        return AuthResult(success=False, handled=False, message=f"{status} {_one_line(error)}")
    except Exception:
        # The database or the cache is down: a temporary failure the client may retry.
        logger.exception("smtp_auth_failed peer=%s", client_ip)
        return AuthResult(
            success=False,
            handled=False,
            message="454 4.7.0 internal_error: temporary failure, please retry later",
        )
    finally:
        connection.close()
    return AuthResult(success=True, auth_data=submitter)


def _submit(submitter: Submitter, raw: bytes, recipients: list[str]) -> str:
    close_old_connections()
    try:
        accepted = submission_accept(submitter=submitter, raw=raw, recipients=recipients)
        email = accepted.email
        if accepted.replayed:
            return f"250 2.0.0 {email.pk} already accepted (a resubmission of this Message-ID)"
        mailbox = email.mailbox
        # What the scan then decides is the pipeline's; the reply says when it may wait.
        if (
            mailbox.oversight_rules
            or outbound_decision(mailbox.oversight_mode).held
            or mailbox.account.sending_stopped
        ):
            return (
                f"250 2.0.0 {email.pk} accepted; oversight may hold it for the operator "
                "(pending_send_approval): do not resend it"
            )
        return f"250 2.0.0 {email.pk} accepted for scanning and delivery"
    except ApiError as error:
        logger.info("smtp_submission_refused code=%s mailbox=%s", error.code, submitter.address)
        return _refusal(error)
    finally:
        connection.close()


def _credentials(blob: bytes) -> str:
    return blob.decode("utf-8", "replace")


class SMTPHandler:
    """aiosmtpd hooks. ``auth_PLAIN``/``auth_LOGIN`` replace aiosmtpd's own mechanisms:
    those call the authenticator synchronously on the event loop, where no database query
    may run, so these parse the same exchange and check the key on a worker thread."""

    async def _authenticate(self, server: SMTP, login: bytes, password: bytes) -> AuthResult:
        assert server.session is not None
        client_ip = str(server.session.peer[0]) if server.session.peer else ""
        return await sync_to_async(_login, thread_sensitive=False)(
            _credentials(login), _credentials(password), client_ip
        )

    async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:
        if len(args) == 1:
            blob = await server.challenge_auth("")
            if blob is MISSING:
                return AuthResult(success=False)  # challenge_auth answered already
        else:
            blob = await _decoded(server, args[1])
            if blob is MISSING:
                return AuthResult(success=False)
        assert isinstance(blob, bytes)
        parts = blob.split(b"\x00")
        if len(parts) != 3:  # authzid NUL authcid NUL password (RFC 4616)
            await server.push("501 5.5.2 Can't split auth value")
            return AuthResult(success=False)
        return await self._authenticate(server, parts[1], parts[2])

    async def auth_LOGIN(self, server: SMTP, args: list[str]) -> AuthResult:
        if len(args) == 1:
            login = await server.challenge_auth(server.AuthLoginUsernameChallenge)
        else:
            login = await _decoded(server, args[1])
        if login is MISSING:
            return AuthResult(success=False)
        password = await server.challenge_auth(server.AuthLoginPasswordChallenge)
        if password is MISSING:
            return AuthResult(success=False)
        assert isinstance(login, bytes)
        assert isinstance(password, bytes)
        return await self._authenticate(server, login, password)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        submitter = session.auth_data if session.authenticated else None
        if isinstance(submitter, Submitter) and address.lower() != submitter.address:
            return (
                f"550 5.7.1 validation_error: MAIL FROM must be the mailbox you logged in "
                f"as, {submitter.address}"
            )
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        # Submitted mail may go anywhere: the send path validates and polices recipients.
        if not session.authenticated and not await sync_to_async(_accepts, thread_sensitive=False)(
            address
        ):
            logger.info("smtp_rcpt_rejected address=%s peer=%s", address, session.peer)
            return f"550 5.1.1 <{address}>: no such mailbox here (log in to submit mail)"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        if not isinstance(raw, bytes):
            raw = str(raw or "").encode()
        if session.authenticated and isinstance(session.auth_data, Submitter):
            try:
                return await sync_to_async(_submit, thread_sensitive=False)(
                    session.auth_data, raw, list(envelope.rcpt_tos)
                )
            except Exception:
                logger.exception("smtp_submission_failed peer=%s", session.peer)
                return "451 4.3.0 internal_error: temporary failure, please retry later"
        try:
            delivered = await sync_to_async(_deliver, thread_sensitive=False)(
                raw, list(envelope.rcpt_tos)
            )
        except Exception:
            # A temporary failure: the sending server keeps the message and retries.
            logger.exception("smtp_delivery_failed peer=%s", session.peer)
            return "451 4.3.0 Temporary failure, please retry later"
        return f"250 2.0.0 Accepted for {delivered} mailbox(es)"


async def _decoded(server: SMTP, value: str) -> bytes | _Missing:
    """An initial AUTH response, base64-decoded; MISSING (answered 501) when it is not."""
    try:
        return base64.b64decode(value.encode(), validate=True)
    except (binascii.Error, ValueError):
        await server.push("501 5.5.2 Can't decode base64")
        return MISSING


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def smtp_controller(
    *,
    host: str,
    port: int,
    tls_context: ssl.SSLContext | None = None,
    require_tls: bool | None = None,
) -> Controller:
    """A listener on host:port (``.start()`` runs it in a background thread).

    ``tls_context`` (default: the configured certificate) enables STARTTLS; AUTH requires
    it unless ``require_tls`` is False, which is the default on a loopback address only.
    """
    context = tls_context if tls_context is not None else smtp_tls_context()
    tls_required = not is_loopback(host) if require_tls is None else require_tls
    if tls_required and context is None:
        logger.warning(
            "smtp_submission_disabled: no STARTTLS certificate (SMTP_TLS_CERT_FILE and "
            "SMTP_TLS_KEY_FILE) on %s; inbound delivery works, AUTH is refused",
            host,
        )
    return Controller(
        SMTPHandler(),
        hostname=host,
        port=port,
        data_size_limit=MAX_MESSAGE_BYTES,
        ident="MultiMail",
        tls_context=context,
        auth_require_tls=tls_required,
    )
