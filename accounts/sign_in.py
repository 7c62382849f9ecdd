"""Operator sign-in by emailed code: the console's sign-in and the API's operator sessions.

No passwords: an operator types their email, receives a one-time code (and a link carrying
it), and enters it. ``POST /v1/operator/start-session`` sends the same code to the
account's oversight address, and verifying it signs that browser in the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import login
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from accounts.actors import Actor
from accounts.codes import TypedCode, code_issue, code_redeem
from accounts.models import Account, CodePurpose, OneTimeCode, Operator
from accounts.selectors import operators_for_email, usable_accounts
from accounts.services import audit_record, normalize_email, operator_create, operator_email_send
from multimail import ratelimit
from multimail.errors import ApiError, not_found

# The account a signed-in person acts for, among the accounts they operate.
SESSION_ACCOUNT_KEY = "console_account_id"
# When this browser signed in (epoch seconds): compared with a role's sessions_ended_at.
SESSION_SIGNED_IN_KEY = "console_signed_in_at"
LOGIN_CODE_TTL = timedelta(minutes=15)
# Codes requested per email address per window; more look like someone mail-bombing a victim.
CODES_PER_EMAIL = 5
CODES_WINDOW_SECONDS = 15 * 60


@dataclass(frozen=True, slots=True)
class LoginStarted:
    """What the caller may tell the user: the same for known and unknown addresses."""

    email: str
    masked_email: str


def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    shown = local[:1] if len(local) > 1 else ""
    return f"{shown}{'*' * max(1, len(local) - len(shown))}@{domain}"


def _accounts_for_email(email: str) -> list[Account]:
    """Accounts this address may operate: as an invited operator, or as the account's
    oversight email (whose operator row is created on first sign-in)."""
    return list(
        usable_accounts()
        .filter(Q(oversight_email__iexact=email) | Q(operators__email__iexact=email))
        .distinct()
        .order_by("id")
    )


def console_login_start(*, email: str, next_url: str = "") -> LoginStarted:
    """Email a sign-in code to ``email`` if it may operate an account.

    Unknown addresses get the same answer as known ones (no enumeration), and count
    against the same per-address limit.
    """
    email = normalize_email(email)
    limit = ratelimit.hit(
        f"console-login-code:{email}", limit=CODES_PER_EMAIL, window_seconds=CODES_WINDOW_SECONDS
    )
    if not limit.allowed:
        raise ApiError(
            "rate_limit_exceeded",
            f"Too many sign-in codes were requested for this address. Wait "
            f"{max(1, limit.retry_after // 60)} minutes, then use the newest code you received.",
            limit_type="console_login",
            headers={"Retry-After": str(limit.retry_after)},
        )
    accounts = _accounts_for_email(email)
    if accounts:
        _send_login_code(account=accounts[0], email=email, next_url=next_url)
    return LoginStarted(email=email, masked_email=mask_email(email))


@transaction.atomic
def _send_login_code(*, account: Account, email: str, next_url: str) -> None:
    # The code is bound to the address (subject), not to one account: a person operating
    # several accounts signs in once and switches.
    _, plaintext = code_issue(
        account=account,
        purpose=CodePurpose.CONSOLE_LOGIN,
        ttl=LOGIN_CODE_TTL,
        subject=email,
        sent_to=email,
    )
    query = {"email": email, "code": plaintext}
    if next_url:
        query["next"] = next_url
    link = f"{settings.PUBLIC_BASE_URL}/console/login/verify?{urlencode(query)}"
    minutes = int(LOGIN_CODE_TTL.total_seconds() // 60)
    operator_email_send(
        account=account,
        to=[email],
        subject="Your console sign-in code",
        text=(
            f"Your MultiMail console sign-in code is:\n\n    {plaintext}\n\n"
            f"Enter it on the sign-in page, or open this link and confirm:\n{link}\n\n"
            f"The code works once, for {minutes} minutes. If you did not ask to sign in, "
            "ignore this email."
        ),
    )


def _wrong_code() -> ApiError:
    return ApiError(
        "validation_error",
        "The code is wrong, expired or already used. Check the newest email, or ask for a "
        "new code.",
        param="code",
    )


@transaction.atomic
def console_login_verify(*, email: str, code: str, client_ip: str) -> list[Operator]:
    """Redeem a sign-in code: returns the operator roles of the person, oldest first.

    The account's oversight address becomes an operator on its first sign-in.
    """
    email = normalize_email(email)
    record = code_redeem(
        account=None,
        purpose=CodePurpose.CONSOLE_LOGIN,
        typed=TypedCode(code=code, client_ip=client_ip),
        target=email,
        subject=email,
    )
    if record is None:
        raise _wrong_code()
    for account in _accounts_for_email(email):
        if account.oversight_email.lower() == email:
            _operator_ensure(account=account, email=email)
    operators = list(operators_for_email(email=email).order_by("created_at", "id"))
    for operator in operators:
        audit_record(
            actor=Actor.for_operator(operator),
            action="console.signed_in",
            resource_type="operator",
            resource_id=operator.pk,
        )
    return operators


def _operator_ensure(*, account: Account, email: str) -> Operator:
    existing = Operator.objects.filter(account=account, email__iexact=email).first()
    if existing is not None:
        return existing
    try:
        # A savepoint: a concurrent sign-in may create the same operator first.
        with transaction.atomic():
            return operator_create(account=account, email=email, via_oversight_email=True)
    except IntegrityError:
        return Operator.objects.get(account=account, email__iexact=email)


# --- Operator sessions started through the API ------------------------------------------


def operator_session_start(*, account: Account) -> LoginStarted:
    """``POST /v1/operator/start-session``: the same emailed code as the console sign-in,
    always to the account's oversight address."""
    return console_login_start(email=account.oversight_email)


def operator_session_verify(*, account: Account, code: str, client_ip: str) -> Operator:
    """Redeem the code for the oversight operator of ``account``.

    ``not_found`` when no code is waiting (none asked for, or all used or expired), so the
    client knows to call start-session rather than to retype the code.
    """
    email = normalize_email(account.oversight_email)
    pending = OneTimeCode.objects.filter(
        purpose=CodePurpose.CONSOLE_LOGIN,
        subject=email,
        used_at__isnull=True,
        expires_at__gt=timezone.now(),
    ).exists()
    if not pending:
        raise not_found(
            "account",
            "No sign-in code is waiting for this account's oversight email. Call "
            "POST /v1/operator/start-session to email one, then verify it within 15 minutes.",
        )
    roles = console_login_verify(email=email, code=code, client_ip=client_ip)
    for role in roles:
        if role.account_id == account.pk:
            return role
    # The code was right but the oversight address no longer operates this account (it
    # changed between start and verify): treat it as the wrong code for this account.
    raise _wrong_code()


def session_sign_in(request: HttpRequest, operator: Operator) -> None:
    """Sign the browser in as ``operator``'s person, acting for ``operator``'s account."""
    login(request, operator.user, backend="django.contrib.auth.backends.ModelBackend")
    now = timezone.now()
    request.session[SESSION_ACCOUNT_KEY] = operator.account_id
    request.session[SESSION_SIGNED_IN_KEY] = now.timestamp()
    # One sign-in opens every account the person operates (the switcher): each role shows it.
    Operator.objects.filter(user_id=operator.user_id).update(last_sign_in_at=now)


def session_is_current(request: HttpRequest, operator: Operator) -> bool:
    """False once "sign out everywhere" ended ``operator``'s sessions after this one began
    (a session from before sign-in times were kept counts as older)."""
    ended = operator.sessions_ended_at
    if ended is None:
        return True
    signed_in = request.session.get(SESSION_SIGNED_IN_KEY)
    return isinstance(signed_in, float) and signed_in > ended.timestamp()
