"""Signup: the proof-of-work challenge, account creation, activation, resend.

The flow: ``challenge_create`` hands out an ALTCHA challenge; ``account_signup`` checks
the solution, creates a pending account (``accounts.creation``) and emails the activation
code; ``account_confirm`` redeems the code, activates the account and returns its first
API key. The signup answer is the same whether or not an account was created, so nobody
can learn which addresses have accounts.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import altcha
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from accounts.actors import Actor
from accounts.codes import ACTIVATION_TARGET, TypedCode, code_issue, code_redeem
from accounts.creation import FIRST_KEY_SCOPES, Activation, OversightEmailInUse, account_create
from accounts.models import Account, AccountState, CodePurpose, OneTimeCode
from accounts.principals import principal_versions_bump
from accounts.services import api_key_create_audited, audit_record, operator_email_send
from accounts.slugs import signup_slug
from mailboxes.models import Mailbox, OversightMode
from multimail.errors import ApiError

POW_ALGORITHM: Final = "SHA-256"
ACTIVATION_TTL = timedelta(days=2)
RESEND_INTERVAL_SECONDS = 5 * 60
SIGNUP_MODES = (OversightMode.GATED_ALL, OversightMode.GATED_SEND, OversightMode.MONITORED)
SIGNUP_MODE_CHOICES = [mode.value for mode in SIGNUP_MODES]
DEFAULT_SIGNUP_MODE = OversightMode.GATED_SEND


# --- Proof of work ----------------------------------------------------------------------


def challenge_create() -> dict[str, Any]:
    """A challenge the client solves by trying numbers 0..maxnumber (ALTCHA v1 format).

    Nothing is stored: the signature proves we issued it and the expiry rides in the salt,
    which is part of what the challenge hashes, so it cannot be edited. The salt ends with
    ALTCHA's ``&`` delimiter, so digits cannot be moved between the salt and the number.
    """
    challenge = altcha.create_challenge_v1(
        altcha.ChallengeOptionsV1(
            algorithm=POW_ALGORITHM,
            max_number=settings.SIGNUP_POW_MAX_NUMBER,
            hmac_key=settings.SECRET_KEY,
            expires=datetime.fromtimestamp(time.time() + settings.SIGNUP_POW_TTL_SECONDS, tz=UTC),
        )
    )
    return {
        "algorithm": challenge.algorithm,
        "challenge": challenge.challenge,
        "maxnumber": challenge.max_number,
        "salt": challenge.salt,
        "signature": challenge.signature,
    }


def _pow_invalid(message: str) -> ApiError:
    return ApiError("invalid_parameter", message, param="pow_solution")


def pow_verify(*, solution: dict[str, Any]) -> None:
    """Accept a solved challenge once; raise ``invalid_parameter`` otherwise.

    ALTCHA's verification answers only yes or no; the checks before it (algorithm, then
    signature) and the reading of its refusal tell the client which field is wrong.
    """
    if solution["algorithm"] != POW_ALGORITHM:
        raise _pow_invalid("pow_solution.algorithm must be SHA-256.")
    challenge = str(solution["challenge"])
    expected_signature = altcha.hmac_hex(POW_ALGORITHM, challenge.encode(), settings.SECRET_KEY)
    if not hmac.compare_digest(expected_signature, str(solution["signature"])):
        raise _pow_invalid(
            "The proof-of-work signature does not match. Request a new challenge with "
            "POST /v1/account/challenge and echo its fields unchanged."
        )
    payload = altcha.PayloadV1(
        algorithm=POW_ALGORITHM,
        challenge=challenge,
        number=int(solution["number"]),
        salt=str(solution["salt"]),
        signature=str(solution["signature"]),
    )
    _, expires, _ = payload.parse_salt()
    solved, refusal = altcha.verify_solution_v1(payload, settings.SECRET_KEY, check_expires=True)
    # Every field is present and the algorithm is known, so the library's only refusal
    # with a reason is an expired (or unreadable) expiry. A salt without one is refused too:
    # every challenge we issue has one.
    if refusal is not None or expires is None:
        raise _pow_invalid(
            "The proof-of-work challenge expired (they last 5 minutes). Request a new one "
            "with POST /v1/account/challenge."
        )
    if not solved:
        raise _pow_invalid(
            "pow_solution.number does not solve the challenge. Find N in 0..maxnumber with "
            "hex(sha256(salt + N)) == challenge, using the salt exactly as sent."
        )
    # Single use: remembered until it would have expired anyway.
    remaining = max(0, int(expires - time.time()))
    if not cache.add(f"pow:used:{challenge}", 1, remaining + 1):
        raise _pow_invalid(
            "This proof-of-work solution was already used. Request a new challenge with "
            "POST /v1/account/challenge."
        )


# --- Signup -----------------------------------------------------------------------------

SIGNUP_MESSAGE = (
    "If this address can be used, an activation code is on its way to the oversight email. "
    "Enter it with POST /v1/confirm. No code within 10 minutes? The address may already "
    "have an account: try POST /v1/account/resend-confirmation."
)

_ATTRIBUTION_PARAMS = {
    "utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term",
    "gclid", "fbclid", "msclkid",
}  # fmt: skip


def _clean_visit(visit: Any) -> dict[str, Any] | None:
    if not isinstance(visit, dict) or set(visit) - {"ts", "landing_path", "params"}:
        return None
    clean: dict[str, Any] = {}
    if "ts" in visit:
        if not isinstance(visit["ts"], int) or isinstance(visit["ts"], bool):
            return None
        clean["ts"] = visit["ts"]
    if "landing_path" in visit:
        if not isinstance(visit["landing_path"], str) or len(visit["landing_path"]) > 256:
            return None
        clean["landing_path"] = visit["landing_path"]
    if "params" in visit:
        params = visit["params"]
        if not isinstance(params, dict) or set(params) - _ATTRIBUTION_PARAMS:
            return None
        if not all(isinstance(v, str) and len(v) <= 256 for v in params.values()):
            return None
        clean["params"] = params
    return clean


def attribution_clean(raw: Any) -> dict[str, Any] | None:
    """The marketing attribution, or None when its shape is wrong: a bad shape is dropped
    silently, never a reason to refuse a signup."""
    if not isinstance(raw, dict) or set(raw) - {"first", "last", "visits", "version"}:
        return None
    clean: dict[str, Any] = {}
    for name in ("first", "last"):
        if name in raw:
            visit = _clean_visit(raw[name])
            if visit is None:
                return None
            clean[name] = visit
    if "visits" in raw:
        visits = raw["visits"]
        if not isinstance(visits, int) or isinstance(visits, bool) or not 1 <= visits <= 10**6:
            return None
        clean["visits"] = visits
    if "version" in raw:
        if raw["version"] != 1:
            return None
        clean["version"] = 1
    return clean


def _resend_marker(email: str) -> str:
    return f"confirm:resend:{hashlib.sha256(email.lower().encode()).hexdigest()}"


def _activation_email(*, account: Account, code: str) -> None:
    link = f"{settings.PUBLIC_BASE_URL}/v1/confirm/{code}"
    operator_email_send(
        account=account,
        subject=f"Your activation code: {code}",
        text=(
            f"Someone (hopefully you) signed up {account.name} for MultiMail and named this "
            "address as its human oversight contact.\n\n"
            f"Activation code: {code}\n\nOr open: {link}\n\n"
            "The code works once, for 48 hours. Activating gives the agent its first API key. "
            "If you did not sign up, ignore this email: nothing happens without the code."
        ),
    )


def _existing_email_notice(*, account: Account) -> None:
    operator_email_send(
        account=account,
        subject="Someone tried to sign up with this address",
        text=(
            f"A MultiMail signup named this address, which already oversees {account.name} "
            f"({account.slug}). No new account was created. If the account is still waiting "
            "for activation, request a new code with POST /v1/account/resend-confirmation. "
            "If this was not you, no action is needed."
        ),
    )


@transaction.atomic
def account_signup(
    *,
    pow_solution: dict[str, Any],
    operator_name: str,
    oversight_email: str,
    slug: str | None,
    physical_address: str = "",
    use_case: str = "",
    oversight_mode: str = DEFAULT_SIGNUP_MODE,
    attribution: dict[str, Any] | None = None,
    request_id: str = "",
) -> Account | None:
    """Create a pending account; None when the oversight email already has one (the
    caller answers the same either way). The proof of work is checked after the slug, so a
    taken slug does not use up the solution."""
    clean_slug = signup_slug(slug=slug, operator_name=operator_name)
    pow_verify(solution=pow_solution)
    email = oversight_email.strip()
    # Marks "a confirmation just went out" for resend-confirmation, whether or not an
    # account is created, so that endpoint answers alike for known and unknown addresses.
    cache.set(
        _resend_marker(email), int(time.time()) + RESEND_INTERVAL_SECONDS, RESEND_INTERVAL_SECONDS
    )
    try:
        created = account_create(
            name=operator_name,
            oversight_email=email,
            slug=clean_slug,
            created_by="signup",
            oversight_mode=oversight_mode,
            physical_address=physical_address,
            use_case=use_case,
            confirmation_sent=True,
            audit_metadata={"oversight_mode": oversight_mode, "attribution": attribution},
            request_id=request_id,
        )
    except OversightEmailInUse as in_use:
        _existing_email_notice(account=in_use.account)
        return None
    account = created.account
    _, code = code_issue(
        account=account, purpose=CodePurpose.ACTIVATION, ttl=ACTIVATION_TTL, sent_to=email
    )
    _activation_email(account=account, code=code)
    return account


# --- Activation -------------------------------------------------------------------------


def account_confirm(*, code: str, client_ip: str, request_id: str = "") -> Activation:
    """Redeem an activation code (attempt-limited per address and overall, see codes)."""
    activation = _activate(typed=TypedCode(code=code, client_ip=client_ip), request_id=request_id)
    if activation is None:
        raise ApiError(
            "validation_error",
            "The activation code is wrong, expired or already used. Check the activation "
            "email, or request a new code with POST /v1/account/resend-confirmation.",
            param="code",
        )
    return activation


@transaction.atomic
def _activate(*, typed: TypedCode, request_id: str) -> Activation | None:
    record = code_redeem(
        account=None, purpose=CodePurpose.ACTIVATION, typed=typed, target=ACTIVATION_TARGET
    )
    if record is None:
        return None
    account = Account.objects.select_for_update().get(pk=record.account_id)
    if account.state != AccountState.PENDING:
        return None
    account.state = AccountState.ACTIVE
    account.activated_at = timezone.now()
    account.save(update_fields=["state", "activated_at"])
    principal_versions_bump([account.pk])
    actor = Actor.system(account, "activation code")
    audit_record(
        actor=actor,
        action="account.activated",
        resource_type="account",
        resource_id=account.pk,
        request_id=request_id,
    )
    key, raw = api_key_create_audited(
        actor=actor, name="First key", scopes=list(FIRST_KEY_SCOPES), request_id=request_id
    )
    mailbox = Mailbox.objects.filter(account=account).order_by("id").first()
    return Activation(account=account, api_key=key, raw_key=raw, mailbox=mailbox)


# --- Resend -----------------------------------------------------------------------------


def confirmation_resend(*, oversight_email: str, request_id: str = "") -> None:
    """Send a fresh activation code. Unknown addresses get the same answer as known ones;
    an address that already has an active account is told so (``conflict``)."""
    email = oversight_email.strip()
    marker = _resend_marker(email)
    now = int(time.time())
    if not cache.add(marker, now + RESEND_INTERVAL_SECONDS, RESEND_INTERVAL_SECONDS):
        retry_after = max(1, int(cache.get(marker) or now + 1) - now)
        raise ApiError(
            "confirmation_recently_sent",
            "A confirmation email went to this address in the last 5 minutes. Wait "
            f"{retry_after} s (Retry-After) before asking for another.",
            headers={"Retry-After": str(retry_after)},
        )
    accounts = list(Account.objects.filter(oversight_email__iexact=email).order_by("-id")[:5])
    pending = next((a for a in accounts if a.state == AccountState.PENDING), None)
    if pending is None:
        if any(a.state == AccountState.ACTIVE for a in accounts):
            cache.delete(marker)
            raise ApiError(
                "conflict",
                "The account for this oversight email is already activated. Use its API key, "
                "or sign in to the console at /console/ with this address.",
                param="oversight_email",
            )
        return
    _reissue_activation(account_id=pending.pk, request_id=request_id)


@transaction.atomic
def _reissue_activation(*, account_id: str, request_id: str) -> None:
    account = Account.objects.select_for_update().get(pk=account_id)
    if account.state != AccountState.PENDING:
        return
    # Only the newest code works: an old email lying around cannot activate the account.
    OneTimeCode.objects.filter(
        account=account, purpose=CodePurpose.ACTIVATION, used_at__isnull=True
    ).update(used_at=timezone.now())
    _, code = code_issue(
        account=account,
        purpose=CodePurpose.ACTIVATION,
        ttl=ACTIVATION_TTL,
        sent_to=account.oversight_email,
    )
    account.confirmation_sent_at = timezone.now()
    account.save(update_fields=["confirmation_sent_at"])
    principal_versions_bump([account.pk])
    audit_record(
        actor=Actor.system(account, "resend-confirmation"),
        action="account.confirmation_resent",
        resource_type="account",
        resource_id=account.pk,
        request_id=request_id,
    )
    _activation_email(account=account, code=code)
