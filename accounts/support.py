"""What support staff do to an account from Django admin. Every action is audited with
``Actor.support`` and the staff member's username, and the operator is told by email."""

from __future__ import annotations

from django.db import transaction

from accounts.actors import Actor
from accounts.models import Account, AccountState, ApiKey, Scope
from accounts.principals import principal_versions_bump
from accounts.services import api_key_create, audit_record, operator_email_send
from accounts.signup import confirmation_resend
from multimail.errors import ApiError


def _locked(account: Account) -> Account:
    return Account.objects.select_for_update().get(pk=account.pk)


@transaction.atomic
def support_account_deactivate(*, actor: Actor, reason: str) -> Account:
    if not reason.strip():
        raise ApiError("missing_parameter", "Give a reason: the operator reads it.", param="reason")
    account = _locked(actor.account)
    account.state = AccountState.DEACTIVATED
    account.deactivated_reason = reason.strip()[:200]
    account.save(update_fields=["state", "deactivated_reason"])
    principal_versions_bump([account.pk])
    audit_record(
        actor=actor,
        action="account.deactivated",
        resource_type="account",
        resource_id=account.pk,
        metadata={"reason": account.deactivated_reason},
    )
    operator_email_send(
        account=account,
        subject="Your account was deactivated",
        text=(
            f"The MultiMail account {account.name} ({account.slug}) was deactivated by "
            f"support.\n\nReason: {account.deactivated_reason}\n\nReply to support to "
            "have it reactivated."
        ),
    )
    return account


@transaction.atomic
def support_account_reactivate(*, actor: Actor) -> Account:
    account = _locked(actor.account)
    if account.state != AccountState.DEACTIVATED:
        return account
    # An account never activated by its operator goes back to waiting for the code.
    account.state = AccountState.ACTIVE if account.activated_at else AccountState.PENDING
    account.deactivated_reason = ""
    account.save(update_fields=["state", "deactivated_reason"])
    principal_versions_bump([account.pk])
    audit_record(
        actor=actor, action="account.reactivated", resource_type="account", resource_id=account.pk
    )
    operator_email_send(
        account=account,
        subject="Your account was reactivated",
        text=f"The MultiMail account {account.name} ({account.slug}) is active again.",
    )
    return account


@transaction.atomic
def support_sending_set(*, actor: Actor, disabled: bool, reason: str = "") -> Account:
    if disabled and not reason.strip():
        raise ApiError("missing_parameter", "Give a reason: the operator reads it.", param="reason")
    account = _locked(actor.account)
    account.sending_disabled = disabled
    account.sending_disabled_reason = reason.strip()[:200] if disabled else ""
    account.save(update_fields=["sending_disabled", "sending_disabled_reason"])
    principal_versions_bump([account.pk])
    audit_record(
        actor=actor,
        action="account.sending_disabled" if disabled else "account.sending_enabled",
        resource_type="account",
        resource_id=account.pk,
        metadata={"reason": account.sending_disabled_reason} if disabled else None,
    )
    operator_email_send(
        account=account,
        subject="Sending was disabled" if disabled else "Sending was enabled again",
        text=(
            f"Support disabled sending for {account.name} ({account.slug}).\n\nReason: "
            f"{account.sending_disabled_reason}"
            if disabled
            else f"Support enabled sending again for {account.name} ({account.slug})."
        ),
    )
    return account


def support_activation_resend(*, actor: Actor) -> None:
    """A new activation code to the oversight email (same 5-minute limit as the API)."""
    confirmation_resend(oversight_email=actor.account.oversight_email)
    audit_record(
        actor=actor,
        action="account.activation_resent",
        resource_type="account",
        resource_id=actor.account.pk,
    )


@transaction.atomic
def support_admin_key_recover(*, actor: Actor) -> ApiKey:
    """An operator who lost every key gets a new admin key, emailed to the oversight
    address only (support never sees it). Outside the plan's key limit on purpose: a
    locked-out account cannot revoke keys to make room."""
    account = actor.account
    key, raw = api_key_create(account=account, name="Recovered admin key", scopes=[Scope.ADMIN])
    audit_record(
        actor=actor,
        action="api_key.recovered",
        resource_type="api_key",
        resource_id=key.pk,
        metadata={"prefix": key.prefix},
    )
    operator_email_send(
        account=account,
        subject="A new admin API key",
        text=(
            f"Support issued a new admin API key for {account.name} ({account.slug}) at your "
            f"request:\n\n    {raw}\n\nStore it now: it is not shown anywhere else. Revoke "
            "keys you no longer use in the console."
        ),
    )
    return key
