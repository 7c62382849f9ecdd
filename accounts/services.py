"""Writes for accounts: operators, settings, deletion, API keys, the audit log, operator
notifications."""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, TypedDict

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.actors import Actor
from accounts.models import Account, ApiKey, AuditEntry, Operator, Scope
from accounts.oversight_addresses import oversight_address_ensure
from accounts.plans import limits_for
from accounts.principals import principal_versions_bump
from accounts.selectors import account_export
from multimail.errors import ApiError, not_found
from multimail.inserts import row_insert

logger = logging.getLogger("multimail.accounts")

KEY_PREFIX = "mm_live_"
# Characters of the key kept in clear as its lookup prefix ("mm_live_" + 8).
LOOKUP_PREFIX_LENGTH = len(KEY_PREFIX) + 8
# last_used_at is refreshed at most this often, so authenticating is not a write per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)
ALL_SCOPES = frozenset(Scope.values)


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def validate_scopes(scopes: list[str]) -> list[str]:
    unknown = [scope for scope in scopes if scope not in ALL_SCOPES]
    if unknown:
        raise ApiError(
            "invalid_parameter",
            f"Unknown scope {unknown[0]!r}. Valid scopes are: read, send, admin, oversight, "
            "oversight_read.",
            param="scopes",
        )
    if Scope.SEND in scopes and (Scope.OVERSIGHT in scopes or Scope.OVERSIGHT_READ in scopes):
        raise ApiError(
            "validation_error",
            "A key cannot hold both send and oversight scopes: an agent must not approve its "
            "own mail. Create two keys.",
            param="scopes",
        )
    return sorted(set(scopes), key=list(Scope.values).index)


def api_key_create(*, account: Account, name: str, scopes: list[str]) -> tuple[ApiKey, str]:
    """Create a key; the raw key is returned once and never stored."""
    clean_scopes = validate_scopes(scopes)
    raw = KEY_PREFIX + secrets.token_urlsafe(32).replace("-", "x").replace("_", "y")
    key = ApiKey.objects.create(
        account=account,
        name=name,
        prefix=raw[:LOOKUP_PREFIX_LENGTH],
        key_hash=hash_key(raw),
        scopes=clean_scopes,
    )
    return key, raw


def api_key_touch(*, api_key: ApiKey) -> None:
    """Record use, at most once per LAST_USED_RESOLUTION (a compare-and-set, no lock)."""
    now = timezone.now()
    if api_key.last_used_at and now - api_key.last_used_at < LAST_USED_RESOLUTION:
        return
    ApiKey.objects.filter(pk=api_key.pk).exclude(
        last_used_at__gte=now - LAST_USED_RESOLUTION
    ).update(last_used_at=now)
    api_key.last_used_at = now


def audit_record(
    *,
    actor: Actor,
    action: str,
    resource_type: str,
    resource_id: str = "",
    metadata: dict[str, Any] | None = None,
    request_id: str = "",
) -> AuditEntry:
    # Decisions and admin actions each write one: the INSERT is built once per process.
    return row_insert(
        AuditEntry(
            account=actor.account,
            action=action,
            resource_type=resource_type,
            resource_id=str(resource_id),
            actor_kind=actor.kind,
            actor_key=actor.api_key,
            actor_label=actor.display,
            metadata=metadata,
            request_id=request_id,
        )
    )


def operator_email_deliver(
    *, to: list[str], subject: str, text: str, html: str | None = None
) -> None:
    """Send one operator email now; the mailer's errors reach the caller (who retries)."""
    message = EmailMultiAlternatives(
        # Subjects often quote what an agent wrote: never let a line break end the header.
        subject=f"[MultiMail] {' '.join(subject.split())}",
        body=text,
        from_email=settings.SYSTEM_FROM_EMAIL,
        to=to,
        headers={"X-MultiMail-Notification": "operator"},
    )
    if html:
        message.attach_alternative(html, "text/html")
    message.send()


def operator_email_send(
    *,
    account: Account,
    subject: str,
    text: str,
    html: str | None = None,
    to: list[str] | None = None,
) -> None:
    """Email the account's oversight address (or ``to``), after the transaction commits so
    a rolled-back action sends nothing."""
    recipients = to or [account.oversight_email]
    transaction.on_commit(
        lambda: operator_email_deliver(to=recipients, subject=subject, text=text, html=html)
    )


# --- Operators ------------------------------------------------------------------------


def normalize_email(raw: str) -> str:
    return raw.strip().lower()


def _username_for(email: str) -> str:
    # Django usernames hold 150 characters; addresses may hold 320.
    lowered = normalize_email(email)
    return lowered if len(lowered) <= 150 else f"op-{hashlib.sha256(lowered.encode()).hexdigest()}"


def operator_create(
    *, account: Account, email: str, name: str = "", via_oversight_email: bool = False
) -> Operator:
    """An operator of ``account``. One person may oversee several accounts: the Django user
    is shared, keyed by the address. Operators sign in by emailed code, never a password."""
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(
        username=_username_for(email), defaults={"email": email.strip()}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return Operator.objects.create(
        account=account,
        user=user,
        email=email.strip(),
        name=name,
        via_oversight_email=via_oversight_email,
    )


def operator_users_prune(*, user_ids: list[int]) -> None:
    """People left with no account to operate (and not staff) have nothing to sign in to."""
    get_user_model().objects.filter(
        pk__in=user_ids, is_staff=False, operator_roles__isnull=True
    ).delete()


def oversight_role_end(*, account: Account, email: str) -> None:
    """``email`` is no longer the oversight email: the role it had only for that ends."""
    roles = Operator.objects.filter(account=account, email__iexact=email, via_oversight_email=True)
    user_ids = list(roles.values_list("user_id", flat=True))
    roles.delete()
    operator_users_prune(user_ids=user_ids)


@transaction.atomic
def operator_invite(*, actor: Actor, email: str, name: str = "") -> Operator:
    """An operator adds a colleague to the account; the colleague signs in by code."""
    email = normalize_email(email)
    oversight_address_ensure(email, param="email")
    if Operator.objects.filter(account=actor.account, email__iexact=email).exists():
        raise ApiError("conflict", f"{email} is already an operator of this account.")
    try:
        with transaction.atomic():
            operator = operator_create(account=actor.account, email=email, name=name)
    except IntegrityError:
        raise ApiError("conflict", f"{email} is already an operator of this account.") from None
    operator.invited_by = actor.operator
    operator.save(update_fields=["invited_by"])
    audit_record(
        actor=actor,
        action="operator.invited",
        resource_type="operator",
        resource_id=operator.pk,
        metadata={"email": email},
    )
    operator_email_send(
        account=actor.account,
        to=[email],
        subject=f"You were invited to operate {actor.account.name}",
        text=(
            f"{actor.display} added you as an operator of the MultiMail account "
            f"{actor.account.name} ({actor.account.slug}).\n\nSign in with this email address "
            f"at {settings.PUBLIC_BASE_URL}/console/login: you will receive a one-time code."
        ),
    )
    return operator


@transaction.atomic
def operator_remove(*, actor: Actor, operator_id: str, request_id: str = "") -> Operator:
    """An operator removes another one (an unknown address a change left behind, a
    colleague who left). Their console access ends with their next request."""
    account = actor.account
    operator = Operator.objects.select_for_update().filter(account=account, pk=operator_id).first()
    if operator is None:
        raise not_found("operator", "That operator does not exist in this account.")
    if normalize_email(operator.email) == normalize_email(account.oversight_email):
        raise ApiError(
            "conflict",
            f"{operator.email} is the oversight email: it would be an operator again at its "
            "next sign-in. Change the oversight email first (support can), then remove it.",
        )
    if actor.operator is not None and actor.operator.pk == operator.pk:
        raise ApiError(
            "conflict", "You cannot remove yourself. Ask another operator of this account."
        )
    user_id, email = operator.user_id, operator.email
    operator.delete()
    operator_users_prune(user_ids=[user_id])
    audit_record(
        actor=actor,
        action="operator.removed",
        resource_type="operator",
        resource_id=operator_id,
        metadata={"email": email},
        request_id=request_id,
    )
    operator_email_send(
        account=account,
        to=[email],
        subject=f"You no longer operate {account.name}",
        text=(
            f"{actor.display} removed this address from the operators of the MultiMail "
            f"account {account.name} ({account.slug})."
        ),
    )
    return operator


@transaction.atomic
def operator_sessions_end(*, actor: Actor, operator_id: str, request_id: str = "") -> Operator:
    """Sign ``operator_id`` out of this account's console on every browser: each of its
    sessions that began before now ends at its next request."""
    operator = (
        Operator.objects.select_for_update().filter(account=actor.account, pk=operator_id).first()
    )
    if operator is None:
        raise not_found("operator", "That operator does not exist in this account.")
    operator.sessions_ended_at = timezone.now()
    operator.save(update_fields=["sessions_ended_at"])
    audit_record(
        actor=actor,
        action="operator.sessions_ended",
        resource_type="operator",
        resource_id=operator.pk,
        metadata={"email": operator.email},
        request_id=request_id,
    )
    return operator


# --- Account settings -----------------------------------------------------------------


class AccountChanges(TypedDict, total=False):
    """The settings an account update may carry; absent means unchanged."""

    name: str
    oversight_email: str
    physical_address: str | None
    require_operator_approval: bool
    approval_expiry_hours: int


# The oversight email is not set here: a new address must confirm first
# (accounts.email_change.account_change is the entry point for a whole update).
ACCOUNT_EDITABLE = tuple(
    name for name in AccountChanges.__annotations__ if name != "oversight_email"
)


@transaction.atomic
def account_update(*, actor: Actor, changes: Mapping[str, Any], request_id: str = "") -> Account:
    account = Account.objects.select_for_update().get(pk=actor.account.pk)
    fields = [name for name in ACCOUNT_EDITABLE if name in changes]
    for name in fields:
        value = changes[name]
        setattr(account, name, "" if value is None and name == "physical_address" else value)
    if fields:
        account.save(update_fields=fields)
        principal_versions_bump([account.pk])
    audit_record(
        actor=actor,
        action="account.updated",
        resource_type="account",
        resource_id=account.pk,
        metadata={"fields": fields},
        request_id=request_id,
    )
    return account


@transaction.atomic
def account_delete(*, actor: Actor, request_id: str = "") -> None:
    """Hard-delete the tenant: every row it owns goes, and its slug is free again."""
    account = Account.objects.select_for_update().get(pk=actor.account.pk)
    user_ids = list(account.operators.values_list("user_id", flat=True))
    recipient, name, slug = account.oversight_email, account.name, account.slug
    logger.info(
        "account_deleted account=%s slug=%s actor=%s request_id=%s",
        account.pk,
        slug,
        actor.display,
        request_id,
    )
    # Mailboxes refer to custom domains with PROTECT; removing them first keeps the
    # cascade from tripping over that order.
    account.mailboxes.all().delete()
    account.delete()
    principal_versions_bump([actor.account.pk])
    operator_users_prune(user_ids=user_ids)

    def notify() -> None:
        EmailMultiAlternatives(
            subject="[MultiMail] Account deleted",
            body=(
                f"The MultiMail account {name} ({slug}) and all its data were deleted by "
                f"{actor.display}. The slug is free again."
            ),
            from_email=settings.SYSTEM_FROM_EMAIL,
            to=[recipient],
        ).send()

    transaction.on_commit(notify)


EXPORT_INTERVAL_SECONDS = 3600


def export_claim(*, account: Account) -> None:
    """One export per account per hour: it reads every row the account owns."""
    key = f"export:{account.pk}"
    now = int(time.time())
    if not cache.add(key, now + EXPORT_INTERVAL_SECONDS, EXPORT_INTERVAL_SECONDS):
        retry_after = max(1, int(cache.get(key) or now + 1) - now)
        raise ApiError(
            "rate_limit_exceeded",
            f"One export per hour. Wait {retry_after} s (Retry-After) and export again.",
            limit_type="export",
            headers={"Retry-After": str(retry_after)},
        )


def export_release(*, account: Account) -> None:
    """An export that failed does not use up the hour."""
    cache.delete(f"export:{account.pk}")


def account_export_take(*, actor: Actor, request_id: str = "") -> dict[str, Any]:
    """The account's export (GET /v1/export and the console's download), once an hour,
    audited."""
    export_claim(account=actor.account)
    try:
        data = account_export(account=actor.account)
    except Exception:
        export_release(account=actor.account)
        raise
    audit_record(
        actor=actor,
        action="account.exported",
        resource_type="account",
        resource_id=actor.account.pk,
        request_id=request_id,
    )
    return data


# --- API keys -------------------------------------------------------------------------


def _key_for_update(account: Account, key_id: str) -> ApiKey:
    key = ApiKey.objects.select_for_update().filter(account=account, pk=key_id).first()
    if key is None:
        raise not_found(
            "api_key",
            "That API key does not exist in this account. List your keys with GET /v1/api-keys.",
        )
    return key


def api_key_limit_check(*, account: Account) -> None:
    limits = limits_for(account.plan)
    if ApiKey.objects.filter(account=account, is_active=True).count() >= limits.max_api_keys:
        raise ApiError(
            "limit_exceeded",
            f"The {limits.title} plan allows {limits.max_api_keys} active API keys. Revoke an "
            "unused key with DELETE /v1/api-keys/{id}, or upgrade with POST /v1/billing/checkout.",
            limit=limits.max_api_keys,
            plan=account.plan,
        )


@transaction.atomic
def api_key_issue(
    *, actor: Actor, name: str, scopes: list[str], request_id: str = ""
) -> tuple[ApiKey, str]:
    """Create a key for the actor's account within the plan's key limit, audited."""
    # The account row lock serialises concurrent creations so the count check holds.
    account = Account.objects.select_for_update().get(pk=actor.account.pk)
    api_key_limit_check(account=account)
    return api_key_create_audited(actor=actor, name=name, scopes=scopes, request_id=request_id)


def api_key_create_audited(
    *, actor: Actor, name: str, scopes: list[str], request_id: str = ""
) -> tuple[ApiKey, str]:
    """Create a key in the actor's account and record who created it."""
    key, raw = api_key_create(account=actor.account, name=name, scopes=scopes)
    audit_record(
        actor=actor,
        action="api_key.created",
        resource_type="api_key",
        resource_id=key.pk,
        metadata={"name": key.name, "scopes": key.scopes},
        request_id=request_id,
    )
    return key, raw


def api_key_check_changeable(*, key: ApiKey) -> None:
    if not key.is_active:
        raise ApiError(
            "conflict", "This API key is revoked and cannot be changed. Create a new key instead."
        )


@transaction.atomic
def api_key_update(
    *,
    actor: Actor,
    key_id: str,
    name: str | None = None,
    scopes: list[str] | None = None,
    request_id: str = "",
) -> ApiKey:
    key = _key_for_update(actor.account, key_id)
    api_key_check_changeable(key=key)
    fields = []
    if name is not None:
        key.name = name
        fields.append("name")
    if scopes is not None:
        key.scopes = validate_scopes(scopes)
        fields.append("scopes")
    if fields:
        key.save(update_fields=fields)
        principal_versions_bump([key.account_id])
    audit_record(
        actor=actor,
        action="api_key.updated",
        resource_type="api_key",
        resource_id=key.pk,
        metadata={"fields": fields, "scopes": key.scopes},
        request_id=request_id,
    )
    return key


@transaction.atomic
def api_key_revoke(*, actor: Actor, key_id: str, request_id: str = "") -> ApiKey:
    """Revoke a key; revoking a revoked key changes nothing and succeeds."""
    key = _key_for_update(actor.account, key_id)
    if key.is_active:
        key.is_active = False
        key.revoked_at = timezone.now()
        key.save(update_fields=["is_active", "revoked_at"])
        principal_versions_bump([key.account_id])
        audit_record(
            actor=actor,
            action="api_key.revoked",
            resource_type="api_key",
            resource_id=key.pk,
            metadata={"name": key.name},
            request_id=request_id,
        )
    return key
