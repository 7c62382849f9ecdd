"""One-time codes emailed to operators: easy to read aloud, stored hashed, single use.

Format: groups of three characters joined by hyphens (``SKP-7D2-4V8``), from an alphabet
without look-alikes (no 0/O, 1/I/L). Input is accepted with or without hyphens, any case.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Account, CodePurpose, OneTimeCode

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def generate_code(groups: int = 3) -> str:
    return "-".join("".join(secrets.choice(CODE_ALPHABET) for _ in range(3)) for _ in range(groups))


def normalize_code(raw: str) -> str:
    cleaned = "".join(ch for ch in raw.upper() if ch.isalnum())
    return "-".join(cleaned[i : i + 3] for i in range(0, len(cleaned), 3))


def hash_code(code: str) -> str:
    return hashlib.sha256(normalize_code(code).encode()).hexdigest()


def code_issue(
    *,
    account: Account,
    purpose: CodePurpose,
    ttl: timedelta,
    subject: str = "",
    payload: dict[str, Any] | None = None,
    sent_to: str = "",
    groups: int = 3,
) -> tuple[OneTimeCode, str]:
    """Create a code and return it with its plaintext (to be emailed, never stored)."""
    plaintext = generate_code(groups)
    record = OneTimeCode.objects.create(
        account=account,
        purpose=purpose,
        subject=subject,
        code_hash=hash_code(plaintext),
        payload=payload or {},
        sent_to=sent_to,
        expires_at=timezone.now() + ttl,
    )
    return record, plaintext


@transaction.atomic
def code_redeem(
    *, account: Account | None, purpose: CodePurpose, code: str, subject: str | None = None
) -> OneTimeCode | None:
    """Use a code once. Returns the record, or None when it is wrong, expired or used.

    The lookup is by hash (equal hashes mean equal codes, so no timing leak on the code);
    the row lock makes two concurrent redemptions of one code end with exactly one winner.
    """
    now = timezone.now()
    query = OneTimeCode.objects.select_for_update().filter(
        purpose=purpose, code_hash=hash_code(code), used_at__isnull=True, expires_at__gt=now
    )
    if account is not None:
        query = query.filter(account=account)
    if subject is not None:
        query = query.filter(subject=subject)
    record = query.order_by("-id").first()
    if record is None:
        return None
    record.used_at = now
    record.save(update_fields=["used_at"])
    return record
