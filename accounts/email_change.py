"""Changing an account's oversight email: the new address confirms before it gains anything.

The oversight address receives every approval link and the activation code, and signs in
to the console as an operator. So a change asked for by support (Django admin) or by an
agent's key (``PATCH /v1/account``) does not take effect when it is asked for:

1. the new address is mailed a confirmation link; until it is followed nothing changes;
2. the current address is told, with a link that cancels the request;
3. once confirmed, the previous address is told again, and the same link undoes the change
   for ``UNDO_DAYS``: the old address is back, and the new one loses the operator role it
   had as the oversight email.

The console role an address holds as the oversight email (``via_oversight_email``) lasts
only while it is the oversight email; roles an operator invited stay.

Both links open a console page that asks for a click (a POST), so a mail scanner fetching
the link decides nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.actors import Actor
from accounts.models import Account, OversightEmailChange
from accounts.oversight_addresses import oversight_address_ensure
from accounts.principals import principal_versions_bump
from accounts.services import (
    account_update,
    audit_record,
    hash_key,
    normalize_email,
    operator_email_send,
    oversight_role_end,
)
from multimail.errors import ApiError

CONFIRM_DAYS = 3
UNDO_DAYS = 14
Status = OversightEmailChange.Status


@dataclass(frozen=True, slots=True)
class ChangeLinks:
    """The two links of a request, in clear only until they are mailed."""

    confirm_url: str
    undo_url: str


def _token() -> tuple[str, str]:
    raw = secrets.token_urlsafe(32)
    return raw, hash_key(raw)


def _link(kind: str, token: str) -> str:
    return f"{settings.PUBLIC_BASE_URL}/console/oversight-email/{kind}?token={token}"


def account_change(*, actor: Actor, changes: Mapping[str, Any], request_id: str = "") -> Account:
    """An account update as support or an agent's key asks for it: the settings apply at
    once; a different oversight email is only requested (see the module docstring)."""
    settings_changes = {name: value for name, value in changes.items() if name != "oversight_email"}
    account = account_update(actor=actor, changes=settings_changes, request_id=request_id)
    new_email = changes.get("oversight_email")
    if new_email and normalize_email(new_email) != normalize_email(account.oversight_email):
        email_change_request(actor=actor, new_email=new_email, request_id=request_id)
    return account


@transaction.atomic
def email_change_request(
    *, actor: Actor, new_email: str, request_id: str = ""
) -> tuple[OversightEmailChange, ChangeLinks]:
    """Ask ``new_email`` to confirm; a request still waiting is replaced by this one."""
    new_email = new_email.strip()
    # Every path (API, console, Django admin) asks here: none can hand the operator's mail
    # to a mailbox an agent reads, not even for a confirmation link.
    oversight_address_ensure(new_email)
    account = Account.objects.select_for_update().get(pk=actor.account.pk)
    if normalize_email(new_email) == normalize_email(account.oversight_email):
        raise ApiError(
            "validation_error",
            f"{new_email} is already the oversight email of this account.",
            param="oversight_email",
        )
    now = timezone.now()
    OversightEmailChange.objects.filter(account=account, status=Status.PENDING).update(
        status=Status.CANCELLED, decided_at=now
    )
    confirm_raw, confirm_hash = _token()
    undo_raw, undo_hash = _token()
    change = OversightEmailChange.objects.create(
        account=account,
        old_email=account.oversight_email,
        new_email=new_email,
        requested_by=actor.display,
        confirm_token_hash=confirm_hash,
        undo_token_hash=undo_hash,
        confirm_expires_at=now + timedelta(days=CONFIRM_DAYS),
    )
    links = ChangeLinks(confirm_url=_link("confirm", confirm_raw), undo_url=_link("undo", undo_raw))
    audit_record(
        actor=actor,
        action="account.oversight_email_change_requested",
        resource_type="account",
        resource_id=account.pk,
        metadata={"from": change.old_email, "to": new_email, "change": change.pk},
        request_id=request_id,
    )
    operator_email_send(
        account=account,
        to=[new_email],
        subject=f"Confirm you oversee {account.name}",
        text=(
            f"{actor.display} asked to make this address the oversight email of the "
            f"MultiMail account {account.name} ({account.slug}). The oversight email "
            "approves the account's mail and signs in to its console.\n\nNothing changes "
            f"until you confirm here, within {CONFIRM_DAYS} days:\n{links.confirm_url}\n\n"
            "If you did not expect this, ignore this email."
        ),
    )
    operator_email_send(
        account=account,
        to=[change.old_email],
        subject="A new oversight email was requested",
        text=(
            f"{actor.display} asked to change the oversight email of {account.name} "
            f"({account.slug}) from this address to {new_email}. It takes effect only once "
            f"{new_email} confirms.\n\nIf you did not expect this, cancel it here (the same "
            f"link undoes the change for {UNDO_DAYS} days after it takes effect):\n"
            f"{links.undo_url}"
        ),
    )
    return change, links


def _invalid_link() -> ApiError:
    return ApiError(
        "not_found",
        "This link is not valid. Open the newest email about the oversight email change.",
        resource="oversight_email_change",
    )


def _by_token(field: str, token: str) -> OversightEmailChange:
    change = (
        OversightEmailChange.objects.select_for_update().filter(**{field: hash_key(token)}).first()
        if token
        else None
    )
    if change is None:
        raise _invalid_link()
    return change


def email_change_preview(*, token: str, undo: bool) -> OversightEmailChange:
    """The change a link points at, to describe it before the click (changes nothing)."""
    field = "undo_token_hash" if undo else "confirm_token_hash"
    change = (
        OversightEmailChange.objects.filter(**{field: hash_key(token)}).first() if token else None
    )
    if change is None:
        raise _invalid_link()
    return change


@transaction.atomic
def email_change_confirm(*, token: str) -> OversightEmailChange:
    """The new address followed its link: it becomes the oversight email."""
    change = _by_token("confirm_token_hash", token)
    now = timezone.now()
    if change.status != Status.PENDING or change.confirm_expires_at <= now:
        raise ApiError(
            "already_decided",
            "This change was already confirmed, cancelled or has expired. Ask for a new one.",
        )
    account = Account.objects.select_for_update().get(pk=change.account_id)
    if normalize_email(account.oversight_email) != normalize_email(change.old_email):
        # The address changed another way since: this request no longer says what it did.
        change.status, change.decided_at = Status.CANCELLED, now
        change.save(update_fields=["status", "decided_at"])
        raise ApiError(
            "already_decided",
            "The oversight email changed since this was asked for. Ask for a new change.",
        )
    account.oversight_email = change.new_email
    account.save(update_fields=["oversight_email"])
    principal_versions_bump([account.pk])
    change.status = Status.CONFIRMED
    change.confirmed_at = change.decided_at = now
    change.undo_expires_at = now + timedelta(days=UNDO_DAYS)
    change.save(update_fields=["status", "confirmed_at", "decided_at", "undo_expires_at"])
    oversight_role_end(account=account, email=change.old_email)
    audit_record(
        actor=Actor.hosted_link(account, label=f"confirmation link sent to {change.new_email}"),
        action="account.oversight_email_changed",
        resource_type="account",
        resource_id=account.pk,
        metadata={"from": change.old_email, "to": change.new_email, "change": change.pk},
    )
    operator_email_send(
        account=account,
        to=[change.old_email],
        subject="The oversight email was changed",
        text=(
            f"{change.new_email} confirmed and is now the oversight email of {account.name} "
            f"({account.slug}), as {change.requested_by} asked. This address no longer signs "
            "in to the console unless an operator invited it. If you did not expect this, undo "
            f"it with the link in the earlier email within {UNDO_DAYS} days."
        ),
    )
    return change


@transaction.atomic
def email_change_undo(*, token: str) -> OversightEmailChange:
    """The previous address followed its link: a waiting request is cancelled; a confirmed
    one is reverted, and the new address loses the operator role the change gave it."""
    change = _by_token("undo_token_hash", token)
    now = timezone.now()
    account = Account.objects.select_for_update().get(pk=change.account_id)
    if change.status == Status.PENDING:
        change.status, change.decided_at = Status.CANCELLED, now
        change.save(update_fields=["status", "decided_at"])
        action = "account.oversight_email_change_cancelled"
    elif (
        change.status == Status.CONFIRMED
        and change.undo_expires_at is not None
        and change.undo_expires_at > now
        and normalize_email(account.oversight_email) == normalize_email(change.new_email)
    ):
        account.oversight_email = change.old_email
        account.save(update_fields=["oversight_email"])
        principal_versions_bump([account.pk])
        oversight_role_end(account=account, email=change.new_email)
        change.status, change.decided_at = Status.UNDONE, now
        change.save(update_fields=["status", "decided_at"])
        action = "account.oversight_email_change_undone"
        operator_email_send(
            account=account,
            to=[change.new_email],
            subject=f"You no longer oversee {account.name}",
            text=(
                f"{change.old_email} undid the change of the oversight email of "
                f"{account.name} ({account.slug}). This address no longer oversees it."
            ),
        )
    else:
        raise ApiError(
            "already_decided",
            "This change can no longer be cancelled or undone (already undone, expired, or "
            "the oversight email changed again). Contact support.",
        )
    audit_record(
        actor=Actor.hosted_link(account, label=f"undo link sent to {change.old_email}"),
        action=action,
        resource_type="account",
        resource_id=account.pk,
        metadata={"from": change.old_email, "to": change.new_email, "change": change.pk},
    )
    return change
