"""Mailboxes: create, update, configure, soft-delete, and the tenant-scoped lookup."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any, TypedDict

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.actors import Actor
from accounts.models import Account
from accounts.plans import limits_for
from accounts.services import audit_record
from mailboxes import lifecycle
from mailboxes.models import (
    Domain,
    GateTiming,
    Mailbox,
    OversightMode,
)
from mailboxes.selectors import active_mailboxes, mailbox_locked
from mailboxes.services.netguard import UnsafeTarget, url_vet
from multimail.errors import ApiError, not_found
from oversight.policy import is_upgrade

# The seed's rule: lowercase letters, digits, dots, underscores and hyphens, alphanumeric at
# both ends.
_LOCAL_PART = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$")


class MailboxChanges(TypedDict, total=False):
    """What a mailbox update (PATCH or configure) may carry; absent means unchanged, None
    clears."""

    oversight_mode: str
    display_name: str | None
    auto_cc: str | None
    auto_bcc: str | None
    forward_inbound: bool
    webhook_url: str | None
    oversight_webhook_url: str | None
    signature_block: str | None
    ai_disclosure: bool
    default_gate_timing: str
    scheduling_enabled: bool
    mcp_configured: bool


# The settings ``mailbox_update`` copies as they are; oversight_mode is checked apart.
UPDATABLE_FIELDS = tuple(
    field for field in MailboxChanges.__annotations__ if field != "oversight_mode"
)
# The settings every outbound email of the mailbox carries, so part of what the operator
# judges (mailboxes.versions), by the label a renewed approval request names them with.
SENDER_FIELDS = {
    "display_name": "Sender name",
    "auto_cc": "Automatic Cc",
    "auto_bcc": "Automatic Bcc",
    "signature_block": "Signature",
    "ai_disclosure": "AI disclosure",
}

# Where the mailbox's events are POSTed: vetted like a webhook subscription's URL when set.
WEBHOOK_URL_FIELDS = ("webhook_url", "oversight_webhook_url")


def mailbox_get(
    *,
    account: Account,
    mailbox_id: str,
    for_update: bool = False,
    with_subscription: bool = False,
    suppressed_among: Collection[str] | None = None,
) -> Mailbox:
    """An active mailbox of ``account``; deleted mailboxes and other tenants' are not_found.
    ``for_update`` locks the mailbox row and its account row; with it, ``with_subscription``
    reads the account's subscription in the same statement, unlocked, and
    ``suppressed_among`` has it say whether any of those addresses is suppressed
    (``any_suppressed``): reads a caller would otherwise make apart (see
    selectors.mailbox_locked)."""
    if for_update:
        mailbox = mailbox_locked(
            account_id=account.pk,
            mailbox_id=mailbox_id,
            with_subscription=with_subscription,
            suppressed_among=suppressed_among,
        )
    else:
        mailbox = active_mailboxes(account=account).filter(pk=mailbox_id).first()
    if mailbox is None:
        raise not_found("mailbox")
    return mailbox


def tenant_domain(*, account: Account) -> str:
    return f"{account.slug}.{settings.MAIL_DOMAIN}"


def mailbox_address_resolve(*, account: Account, address_local: str) -> tuple[str, Domain | None]:
    """The full address for ``address_local`` (a local part, or a full address on the
    tenant's subdomain or on one of its verified custom domains) and its custom domain."""
    local, at, domain_name = address_local.strip().rpartition("@")
    if not at:
        local, domain_name = address_local.strip(), ""
    if not _LOCAL_PART.fullmatch(local):
        raise ApiError(
            "invalid_parameter",
            "The local part of the mailbox address contains invalid characters. Use only "
            "lowercase letters, numbers, dots, underscores, and hyphens (at most 64); it must "
            "start and end with a letter or number.",
            param="address_local",
        )
    own_domain = tenant_domain(account=account)
    if not domain_name or domain_name.lower() == own_domain:
        return f"{local}@{own_domain}", None
    domain = Domain.objects.filter(account=account, domain=domain_name.lower()).first()
    if domain is None or domain.status != Domain.Status.ACTIVE:
        raise ApiError(
            "invalid_parameter",
            f"{domain_name} is not a verified custom domain of this account. Use a local part "
            f"(the mailbox is created on {own_domain}), or add and verify the domain with "
            "POST /v1/domains first.",
            param="address_local",
        )
    return f"{local}@{domain.domain}", domain


def _ensure_address_free(address: str) -> None:
    # Addresses are unique forever: a deleted mailbox keeps its address, so mail meant for
    # it can never reach a new owner.
    if Mailbox.objects.filter(address=address).exists():
        raise ApiError(
            "address_taken",
            f"Another mailbox already uses {address}. Choose a different address_local.",
            param="address_local",
        )


def _ensure_below_limit(account: Account) -> None:
    limits = limits_for(account.plan)
    count = Mailbox.objects.filter(account=account, is_active=True).count()
    if count >= limits.max_mailboxes:
        raise ApiError(
            "limit_exceeded",
            f"The {limits.title} plan allows {limits.max_mailboxes} mailboxes and this account "
            "has reached it. Upgrade with POST /v1/billing/checkout or delete an unused "
            "mailbox.",
            limit=limits.max_mailboxes,
            plan=account.plan,
        )


def _webhook_url_check(field: str, url: str) -> None:
    # Resolves the host name: callers run it before taking any row lock.
    try:
        url_vet(url)
    except UnsafeTarget as exc:
        raise ApiError("invalid_parameter", str(exc), param=field) from exc


def mailbox_create_check(*, account: Account, address_local: str, webhook_url: str | None) -> None:
    """Every refusal ``mailbox_create`` can give, checked before the approval gate asks the
    operator (the create checks again under the account lock)."""
    address, _ = mailbox_address_resolve(account=account, address_local=address_local)
    _ensure_address_free(address)
    _ensure_below_limit(account)
    if webhook_url:
        _webhook_url_check("webhook_url", webhook_url)


@transaction.atomic
def mailbox_create(
    *,
    actor: Actor,
    address_local: str,
    display_name: str = "",
    webhook_url: str | None = None,
    ai_disclosure: bool = False,
    request_id: str = "",
) -> Mailbox:
    if webhook_url:
        _webhook_url_check("webhook_url", webhook_url)
    # The account row lock makes the count and the insert one step: two concurrent creates
    # cannot both take the last slot of the plan.
    account = Account.objects.select_for_update(no_key=True).get(pk=actor.account.pk)
    address, domain = mailbox_address_resolve(account=account, address_local=address_local)
    _ensure_address_free(address)
    _ensure_below_limit(account)
    try:
        with transaction.atomic():
            mailbox = Mailbox.objects.create(
                account=account,
                address=address,
                domain=domain,
                display_name=display_name or "",
                webhook_url=webhook_url or None,
                ai_disclosure=ai_disclosure,
                # New mailboxes always start gated; more autonomy goes through the upgrade flow.
                oversight_mode=OversightMode.GATED_SEND,
            )
    except IntegrityError:
        raise ApiError(
            "address_taken",
            f"Another mailbox already uses {address}. Choose a different address_local.",
            param="address_local",
        ) from None
    audit_record(
        actor=actor,
        action="mailbox.created",
        resource_type="mailbox",
        resource_id=mailbox.pk,
        metadata={"address": address},
        request_id=request_id,
    )
    return mailbox


def oversight_mode_check(*, current: str, target: str) -> None:
    if target not in OversightMode.values:
        raise ApiError(
            "invalid_parameter",
            f"oversight_mode must be one of {', '.join(OversightMode.values)}.",
            param="oversight_mode",
        )
    if is_upgrade(current, target):
        raise ApiError(
            "validation_error",
            f"oversight_mode can only be lowered here ({current} to {target} is an upgrade). "
            "Ask the operator with POST /v1/mailboxes/{id}/request-upgrade, then redeem the "
            "code with POST /v1/mailboxes/{id}/upgrade.",
            param="oversight_mode",
        )


def _webhook_urls_check(mailbox: Mailbox, changes: Mapping[str, Any]) -> None:
    # Only a new URL is vetted: saving other settings never fails on the stored one.
    for field in WEBHOOK_URL_FIELDS:
        url = changes.get(field)
        if url and url != getattr(mailbox, field):
            _webhook_url_check(field, url)


def _settings_check(mailbox: Mailbox, changes: Mapping[str, Any]) -> None:
    if "oversight_mode" in changes and changes["oversight_mode"] != mailbox.oversight_mode:
        oversight_mode_check(current=mailbox.oversight_mode, target=changes["oversight_mode"])
    if "default_gate_timing" in changes and changes["default_gate_timing"] not in GateTiming.values:
        raise ApiError(
            "invalid_parameter",
            "default_gate_timing must be gate_first or schedule_first.",
            param="default_gate_timing",
        )


def mailbox_update_check(
    *, account: Account, mailbox_id: str, changes: Mapping[str, Any]
) -> Mailbox:
    """Every refusal ``mailbox_update`` can give, checked before the approval gate asks the
    operator; returns the mailbox as it is now."""
    mailbox = mailbox_get(account=account, mailbox_id=mailbox_id)
    _webhook_urls_check(mailbox, changes)
    _settings_check(mailbox, changes)
    return mailbox


@transaction.atomic
def mailbox_update(
    *,
    actor: Actor,
    mailbox_id: str,
    changes: Mapping[str, Any],
    action: str = "mailbox.updated",
    request_id: str = "",
) -> Mailbox:
    """Apply settings and a mode downgrade; records what changed, old and new."""
    if any(changes.get(field) for field in WEBHOOK_URL_FIELDS):
        # Vetting resolves host names: before the row lock, not under it.
        _webhook_urls_check(mailbox_get(account=actor.account, mailbox_id=mailbox_id), changes)
    mailbox = mailbox_get(account=actor.account, mailbox_id=mailbox_id, for_update=True)
    _settings_check(mailbox, changes)
    diff: dict[str, Any] = {}
    if "oversight_mode" in changes and changes["oversight_mode"] != mailbox.oversight_mode:
        diff["oversight_mode"] = [mailbox.oversight_mode, changes["oversight_mode"]]
        mailbox.oversight_mode = changes["oversight_mode"]
    for field in UPDATABLE_FIELDS:
        if field not in changes:
            continue
        value = changes[field]
        if field == "display_name":
            value = value or ""
        if getattr(mailbox, field) != value:
            diff[field] = [getattr(mailbox, field), value]
            setattr(mailbox, field, value)
    if diff:
        mailbox.save(update_fields=list(diff))
        audit_record(
            actor=actor,
            action=action,
            resource_type="mailbox",
            resource_id=mailbox.pk,
            metadata={"changes": diff},
            request_id=request_id,
        )
    sender_changes = [label for field, label in SENDER_FIELDS.items() if field in diff]
    if sender_changes:
        # Its held mail would now go out differently from what the operator was shown.
        lifecycle.mailbox_sender_changed(mailbox=mailbox, changed=sender_changes)
    return mailbox


@transaction.atomic
def mailbox_delete(*, actor: Actor, mailbox_id: str, request_id: str = "") -> None:
    """Soft delete: the mailbox stops sending and receiving; its mail stays for the operator
    and its address is never reused."""
    mailbox = mailbox_get(account=actor.account, mailbox_id=mailbox_id, for_update=True)
    now = timezone.now()
    mailbox.is_active = False
    mailbox.deleted_at = now
    mailbox.save(update_fields=["is_active", "deleted_at"])
    # Its queued outbound mail will not leave: a deleted mailbox sends nothing. (Mail already
    # in "sending" is stopped by the delivery step, which checks the mailbox again.)
    cancelled = lifecycle.mailbox_cancel_queued(mailbox=mailbox)
    audit_record(
        actor=actor,
        action="mailbox.deleted",
        resource_type="mailbox",
        resource_id=mailbox.pk,
        metadata={"address": mailbox.address, "cancelled_emails": cancelled},
        request_id=request_id,
    )
