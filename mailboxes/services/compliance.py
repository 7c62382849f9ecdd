"""What every outbound email carries for CAN-SPAM, RFC 8058 and sender identity.

The outbound pipeline calls ``outbound_headers`` and ``footer_text`` when it builds a
message; the unsubscribe endpoints call ``unsubscribe_read`` and ``unsubscribe_apply``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from email.utils import getaddresses
from urllib.parse import quote

from django.conf import settings
from django.core import signing
from django.db import transaction

from accounts.actors import Actor
from accounts.models import Account
from accounts.services import audit_record
from mailboxes.models import Email, Mailbox, Suppression
from mailboxes.services.signing import identity_sign

UNSUBSCRIBE_SALT = "multimail.unsubscribe"


@dataclass(frozen=True, slots=True)
class UnsubscribeRequest:
    account: Account
    mailbox_id: str
    addresses: list[str]


def _recipients(email: Email) -> list[str]:
    pairs = getaddresses([*email.to, *email.cc])
    return list(dict.fromkeys(address.lower() for _, address in pairs if "@" in address))


def unsubscribe_token(*, email: Email) -> str:
    """Signed (not encrypted) and without expiry: CAN-SPAM wants the link to keep working.
    It names the recipients of this one message, so a click unsubscribes exactly them."""
    return signing.dumps(
        {"a": email.account_id, "m": email.mailbox_id, "r": _recipients(email)},
        salt=UNSUBSCRIBE_SALT,
        compress=True,
    )


def unsubscribe_url(token: str) -> str:
    return f"{settings.PUBLIC_BASE_URL}/v1/unsubscribe/{token}"


def outbound_headers(*, email: Email) -> dict[str, str]:
    """Headers for one outbound email: one-click unsubscribe, the AI disclosure when the
    mailbox enables it, and the signed identity claim."""
    mailbox = email.mailbox
    account = mailbox.account
    token = unsubscribe_token(email=email)
    mailto = f"mailto:unsubscribe@{settings.MAIL_DOMAIN}?subject={quote('unsubscribe ' + token)}"
    headers = {
        "List-Unsubscribe": f"<{unsubscribe_url(token)}>, <{mailto}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    if mailbox.ai_disclosure:
        headers["X-AI-Generated"] = "true"
    headers["X-MultiMail-Identity"] = identity_sign(
        {
            "v": 1,
            "operator": account.name,
            "account": account.slug,
            "mailbox": mailbox.address,
            "oversight_mode": mailbox.oversight_mode,
            "ai_generated": bool(mailbox.ai_disclosure),
            "email_id": email.pk,
            "iat": int(time.time()),
        }
    )
    return headers


def footer_text(*, mailbox: Mailbox) -> str:
    """Plain-text footer appended to every outbound body: the mailbox's signature block,
    then who sends it and the operator's postal address (CAN-SPAM). No leading separator:
    the renderer places it."""
    account = mailbox.account
    lines = []
    if mailbox.signature_block:
        lines += [mailbox.signature_block.strip(), ""]
    lines.append(f"Sent by {account.name} via MultiMail.")
    if account.physical_address.strip():
        lines.append(" ".join(account.physical_address.split()))
    return "\n".join(lines)


def unsubscribe_read(*, token: str) -> UnsubscribeRequest | None:
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    account = Account.objects.filter(pk=data.get("a")).first()
    if account is None:
        return None
    return UnsubscribeRequest(
        account=account, mailbox_id=str(data.get("m", "")), addresses=list(data.get("r", []))
    )


@transaction.atomic
def unsubscribe_apply(*, request: UnsubscribeRequest) -> list[str]:
    """Add every address of the token to the account's suppression list. An address already
    there keeps its reason (a hard bounce stays a hard bounce)."""
    mailbox = Mailbox.objects.filter(account=request.account, pk=request.mailbox_id).first()
    Suppression.objects.bulk_create(
        [
            Suppression(
                account=request.account,
                mailbox=mailbox,
                email_address=address,
                reason=Suppression.Reason.UNSUBSCRIBE,
            )
            for address in request.addresses
        ],
        ignore_conflicts=True,
    )
    audit_record(
        actor=Actor.system(request.account, "unsubscribe link"),
        action="suppression.unsubscribed",
        resource_type="suppression",
        resource_id=request.mailbox_id,
        metadata={"addresses": request.addresses},
    )
    return request.addresses


def unsubscribe_by_mail(*, subject: str) -> list[str]:
    """The List-Unsubscribe mailto path: mail to unsubscribe@MAIL_DOMAIN whose subject is
    "unsubscribe <token>". Inbound handling calls this for that address; returns the
    addresses suppressed (none when the token is missing or forged)."""
    words = subject.split()
    token = words[-1] if len(words) >= 2 and words[-2].lower().endswith("unsubscribe") else ""
    request = unsubscribe_read(token=token) if token else None
    return unsubscribe_apply(request=request) if request else []
