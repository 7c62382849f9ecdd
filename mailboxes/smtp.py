"""The built-in SMTP listener: mail for this server's mailboxes arrives here directly.

Unknown recipients are refused at RCPT time (550), so the sending server bounces the mail
to its author instead of us accepting and silently dropping it. DATA hands the exact bytes
to ``inbound_receive``, the same service the Postmark webhook uses. Database work runs in
worker threads (the SMTP session is asyncio) with stale connections closed around it.
"""

from __future__ import annotations

import logging
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from asgiref.sync import sync_to_async
from django.db import close_old_connections, connection

from mailboxes.services.inbound.receive import inbound_accepts, inbound_receive

logger = logging.getLogger("multimail.smtp")

# Larger than the 10 MB attachment cap once MIME's base64 overhead is added.
MAX_MESSAGE_BYTES = 25 * 1024 * 1024


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


class InboundSMTPHandler:
    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if not await sync_to_async(_accepts, thread_sensitive=False)(address):
            logger.info("smtp_rcpt_rejected address=%s peer=%s", address, session.peer)
            return f"550 5.1.1 <{address}>: no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        if not isinstance(raw, bytes):
            raw = str(raw or "").encode()
        try:
            delivered = await sync_to_async(_deliver, thread_sensitive=False)(
                raw, list(envelope.rcpt_tos)
            )
        except Exception:
            # A temporary failure: the sending server keeps the message and retries.
            logger.exception("smtp_delivery_failed peer=%s", session.peer)
            return "451 4.3.0 Temporary failure, please retry later"
        return f"250 2.0.0 Accepted for {delivered} mailbox(es)"


def smtp_controller(*, host: str, port: int) -> Controller:
    """A listener on host:port (``.start()`` runs it in a background thread)."""
    return Controller(
        InboundSMTPHandler(),
        hostname=host,
        port=port,
        data_size_limit=MAX_MESSAGE_BYTES,
        ident="MultiMail",
    )
