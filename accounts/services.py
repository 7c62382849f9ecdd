"""Writes for accounts: API keys, the audit log, operator notifications."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.utils import timezone

from accounts.actors import Actor
from accounts.models import Account, ApiKey, AuditEntry, Scope
from multimail.errors import ApiError

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
    return AuditEntry.objects.create(
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

    def send() -> None:
        message = EmailMultiAlternatives(
            subject=f"[MultiMail] {subject}",
            body=text,
            from_email=settings.SYSTEM_FROM_EMAIL,
            to=recipients,
            headers={"X-MultiMail-Notification": "operator"},
        )
        if html:
            message.attach_alternative(html, "text/html")
        message.send()

    transaction.on_commit(send)
