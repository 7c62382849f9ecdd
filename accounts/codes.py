"""One-time codes emailed to operators: easy to read aloud, stored hashed, single use.

Format: groups of three characters joined by hyphens (``SKP-7D2-4V8``), from an alphabet
without look-alikes (no 0/O, 1/I/L). Input is accepted with or without hyphens, any case.

Every code a person types is attempt-limited here, where it is redeemed, whatever the
purpose, and so is an API key typed as an SMTP password (``attempts_count``): per source
(the client address) and per target (what the code unlocks: a sign-in address, a mailbox,
an account). The counters live in the shared cache, so every web
worker and process counts against the same budget, and they count outside the request's
transaction: a wrong code counts even though the request that checked it rolls back.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from rest_framework.request import Request

from accounts.models import Account, CodePurpose, OneTimeCode
from multimail import ratelimit
from multimail.errors import ApiError

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


@dataclass(frozen=True, slots=True)
class TypedCode:
    """A code a person typed, and the client address it came from (the per-source limit)."""

    code: str
    client_ip: str


def typed_code(raw: object, request: HttpRequest | Request) -> TypedCode | None:
    """The code a request carries, if any. Not text (a number in JSON) is just a wrong code."""
    return TypedCode(code=str(raw), client_ip=ratelimit.client_ip(request)) if raw else None


@dataclass(frozen=True, slots=True)
class AttemptLimit:
    per_source: int
    per_target: int
    window_seconds: int = 3600
    # The refusal's wording: "Too many {tried} ... then {then}."
    tried: str = "codes were tried"
    target: str = "for this code"
    then: str = "enter the newest code you received"


# Codes are 9 characters of a 31-letter alphabet: a few tries an hour leave guessing
# hopeless. The per-source limit is below the per-target one, so one address alone cannot
# lock the person a code is for out of their own code. An activation code names no target
# before it is found (the body is the code alone): its target is every pending activation,
# with a budget that many addresses guessing at once, not one person's typos, exhaust.
ATTEMPT_LIMITS: dict[str, AttemptLimit] = {
    CodePurpose.ACTIVATION: AttemptLimit(per_source=5, per_target=300),
    CodePurpose.CONSOLE_LOGIN: AttemptLimit(per_source=5, per_target=10),
    CodePurpose.MODE_UPGRADE: AttemptLimit(per_source=5, per_target=10),
    CodePurpose.ADMIN_ACTION: AttemptLimit(per_source=5, per_target=10),
    # An API key is far beyond guessing; the budget is against a leaked list of keys being
    # tried, and a client misconfigured with an old key hammering the listener.
    "smtp_login": AttemptLimit(
        per_source=5,
        per_target=10,
        tried="SMTP logins failed",
        target="for this mailbox",
        then="log in with a current API key that has the send scope",
    ),
}
SMTP_LOGIN = "smtp_login"
ACTIVATION_TARGET = "pending-activations"


def _attempt_buckets(kind: str, client_ip: str, target: str) -> list[tuple[str, str, int]]:
    limit = ATTEMPT_LIMITS[kind]
    # Source first: an address over its own budget never spends the target's.
    return [
        ("from this address", f"code-attempt:{kind}:source:{client_ip}", limit.per_source),
        (limit.target, f"code-attempt:{kind}:target:{target}", limit.per_target),
    ]


def attempts_count(kind: str, *, client_ip: str, target: str) -> list[str]:
    """Count this attempt (of a code, or of a credential: ``ATTEMPT_LIMITS[kind]``) before
    it is looked at, so concurrent guesses cannot all slip in under the limit; refuse it
    with ``too_many_attempts`` once a budget is spent. Returns the buckets, for
    ``attempts_refund`` once the attempt turns out right."""
    limit = ATTEMPT_LIMITS[kind]
    counted: list[str] = []
    for where, bucket, budget in _attempt_buckets(kind, client_ip, target):
        hit = ratelimit.hit(bucket, limit=budget, window_seconds=limit.window_seconds)
        if not hit.allowed:
            raise ApiError(
                "too_many_attempts",
                f"Too many {limit.tried} {where} in the last hour. Wait {hit.retry_after} "
                f"seconds (Retry-After), then {limit.then}.",
                headers={"Retry-After": str(hit.retry_after)},
            )
        counted.append(bucket)
    return counted


def attempts_refund(kind: str, counted: list[str]) -> None:
    """A right attempt gives its count back: only wrong ones spend the budgets."""
    window = ATTEMPT_LIMITS[kind].window_seconds
    for bucket in counted:
        # At a window boundary the refund lands in the next window: one try more, once.
        ratelimit.hit(bucket, limit=0, window_seconds=window, cost=-1)


def code_redeem(
    *,
    account: Account | None,
    purpose: CodePurpose,
    typed: TypedCode,
    target: str,
    subject: str | list[str] | None = None,
) -> OneTimeCode | None:
    """Use a code once. Returns the record, or None when it is wrong, expired or used.

    ``target`` names what the code unlocks, for the per-target attempt limit; past either
    limit this answers ``too_many_attempts`` (429, Retry-After) without looking at the code.
    A right code gives its attempt back, so only wrong ones spend the budgets (people behind
    one address activating their own accounts are not held up by each other).
    """
    counted = attempts_count(purpose, client_ip=typed.client_ip, target=target)
    record = _redeem(account=account, purpose=purpose, code=typed.code, subject=subject)
    if record is not None:
        attempts_refund(purpose, counted)
    return record


@transaction.atomic
def _redeem(
    *, account: Account | None, purpose: CodePurpose, code: str, subject: str | list[str] | None
) -> OneTimeCode | None:
    # The lookup is by hash (equal hashes mean equal codes, so no timing leak on the code);
    # the row lock makes two concurrent redemptions of one code end with exactly one winner.
    now = timezone.now()
    query = OneTimeCode.objects.select_for_update().filter(
        purpose=purpose, code_hash=hash_code(code), used_at__isnull=True, expires_at__gt=now
    )
    if account is not None:
        query = query.filter(account=account)
    if isinstance(subject, list):
        query = query.filter(subject__in=subject)
    elif subject is not None:
        query = query.filter(subject=subject)
    record = query.order_by("-id").first()
    if record is None:
        return None
    record.used_at = now
    record.save(update_fields=["used_at"])
    return record
