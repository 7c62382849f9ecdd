"""SMTP submission: an agent hands in a MIME message instead of calling POST .../send.

The login is the mailbox address and the password an API key with the send scope, checked
by the API's own key authentication and attempt-limited like a typed code. The message is
parsed into the send endpoint's input, validated by the same serializer, and accepted by
``email_accept``: idempotency (the Message-ID is the idempotency key), quotas,
suppression, the content filter and oversight apply exactly as to the API.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from dataclasses import dataclass

from rest_framework.exceptions import ValidationError

from accounts.actors import Actor
from accounts.codes import SMTP_LOGIN, attempts_count, attempts_refund
from accounts.models import ApiKey
from mailboxes.serializers_outbound import SendEmailSerializer
from mailboxes.services.inbound.parse import ParsedMessage, message_parse
from mailboxes.services.mailboxes import active_mailboxes
from mailboxes.services.outbound.accept import Accepted, OutgoingAttachment, email_accept
from multimail.authentication import api_key_authenticate, api_key_ensure_usable
from multimail.errors import ApiError
from multimail.exceptions import validation_error_to_api_error
from multimail.permissions import has_scope

logger = logging.getLogger("multimail.smtp")

# The length limit of the send endpoint's idempotency_key.
MAX_IDEMPOTENCY_KEY = 255


@dataclass(frozen=True, slots=True)
class Submitter:
    """Who an authenticated SMTP session submits as: a key and one mailbox of its account."""

    api_key_id: str
    mailbox_id: str
    address: str


def submission_authenticate(*, login: str, password: str, client_ip: str) -> Submitter:
    """The mailbox ``login`` names, if ``password`` is a key of its account that may send.

    Counted against the attempt budgets before anything is looked up; a success gives its
    attempt back. Every refusal is a catalog error (``too_many_attempts`` past a budget).
    """
    address = login.strip().lower()
    # The login is the client's text, of any length: its digest keeps the cache key short.
    target = hashlib.sha256(address.encode()).hexdigest()[:32]
    counted = attempts_count(SMTP_LOGIN, client_ip=client_ip, target=target)
    key = api_key_authenticate(password.strip())
    if not has_scope(key.scopes, "send"):
        raise ApiError(
            "insufficient_permissions",
            "This API key lacks the send scope SMTP submission needs. Use a key with send scope.",
            required_scope="send",
        )
    # Tenancy: only a mailbox of the key's own account; another tenant's reads as unknown.
    mailbox = (
        active_mailboxes(account=key.account).filter(address=address).only("pk", "address").first()
    )
    if mailbox is None:
        raise ApiError(
            "invalid_api_key",
            "The login must be the address of an active mailbox of this key's account.",
        )
    attempts_refund(SMTP_LOGIN, counted)
    return Submitter(api_key_id=key.pk, mailbox_id=mailbox.pk, address=mailbox.address)


def _send_input(parsed: ParsedMessage, recipients: list[str]) -> dict[str, object]:
    """The send endpoint's JSON body for a parsed message: To and Cc from the headers, every
    other envelope recipient (Bcc, which the client strips from the headers) as bcc."""
    listed = {address.lower() for address in [*parsed.to, *parsed.cc]}
    bcc = list(dict.fromkeys(a for a in recipients if a.lower() not in listed))
    data: dict[str, object] = {
        "to": parsed.to,
        "cc": parsed.cc,
        "bcc": bcc,
        "subject": parsed.subject,
        "markdown": parsed.markdown,
        "attachments": [
            {
                "name": item.filename,
                "content_type": item.content_type,
                "content_base64": base64.b64encode(item.content).decode(),
            }
            for item in parsed.attachments
        ],
    }
    if parsed.had_message_id:
        data["idempotency_key"] = _idempotency_key(parsed.message_id)
    return data


def _idempotency_key(message_id: str) -> str:
    # The key has the API's length limit; a longer Message-ID is keyed by its digest.
    if len(message_id) <= MAX_IDEMPOTENCY_KEY:
        return message_id
    return "sha256:" + hashlib.sha256(message_id.encode()).hexdigest()


def submission_accept(*, submitter: Submitter, raw: bytes, recipients: list[str]) -> Accepted:
    """Accept a submitted message from the session's mailbox, as POST .../send would."""
    # The key is read again: it (or its account) may have been stopped since the login.
    key = ApiKey.objects.select_related("account").filter(pk=submitter.api_key_id).first()
    if key is None:
        raise ApiError("invalid_api_key", "This API key was deleted since the SMTP login.")
    api_key_ensure_usable(key)
    parsed = message_parse(raw)
    if parsed.from_address.lower() != submitter.address:
        raise ApiError(
            "validation_error",
            f"From must be the mailbox you logged in as, {submitter.address}; it is "
            f"{parsed.from_address or 'missing'}.",
            param="from",
        )
    serializer = SendEmailSerializer(data=_send_input(parsed, recipients))
    try:
        serializer.is_valid(raise_exception=True)
    except ValidationError as exc:
        raise validation_error_to_api_error(exc) from None
    data = serializer.validated_data
    accepted = email_accept(
        actor=Actor.for_key(key),
        mailbox_id=submitter.mailbox_id,
        to=data["to"],
        cc=data.get("cc", []),
        bcc=data.get("bcc", []),
        subject=data["subject"],
        markdown=data["markdown"],
        attachments=[
            OutgoingAttachment(
                name=item["name"], content_type=item["content_type"], content=item["content_base64"]
            )
            for item in data.get("attachments", [])
        ],
        idempotency_key=data.get("idempotency_key") or None,
    )
    logger.info(
        "smtp_submission_accepted email=%s mailbox=%s replayed=%s",
        accepted.email.pk,
        submitter.mailbox_id,
        accepted.replayed,
    )
    return accepted
