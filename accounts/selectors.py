"""Reads for accounts: the AccountInfo view, key and audit lists, operators and their roles,
the full export."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from accounts.filters import AuditEntryFilter, AuditLogFilter
from accounts.models import (
    Account,
    AccountState,
    AdminActionRequest,
    AdminActionStatus,
    ApiKey,
    AuditEntry,
    Operator,
    OversightEmailChange,
)
from accounts.plans import limits_for
from mailboxes.models import Domain, Email, Mailbox, Suppression, WebhookSubscription
from mailboxes.quotas import account_usage, emails_sent_this_period, storage_used_bytes
from multimail.errors import not_found
from multimail.filters import filtered
from multimail.pagination import Page, cursor_paginate
from multimail.statements import hot_cursor

AUDIT_PAGE_SIZE = 50


def admin_actions_awaiting(*, account: Account) -> QuerySet[AdminActionRequest]:
    """Admin actions an agent asked for that wait for an operator and can still be approved."""
    return AdminActionRequest.objects.filter(
        account=account, status=AdminActionStatus.PENDING, expires_at__gt=timezone.now()
    )


def oversight_email_pending(*, account: Account) -> str | None:
    """The address asked to become the oversight email that has not confirmed yet."""
    return (
        OversightEmailChange.objects.filter(
            account=account,
            status=OversightEmailChange.Status.PENDING,
            confirm_expires_at__gt=timezone.now(),
        )
        .order_by("-id")
        .values_list("new_email", flat=True)
        .first()
    )


def account_sending_stopped(*, account_id: str, lock: bool = False) -> bool:
    """Whether the operator stopped the account's sending, as committed now.

    ``lock``: keep the row under FOR KEY SHARE until the caller's transaction ends, so a
    stop (which locks the row FOR UPDATE) waits for the caller instead of happening under
    its feet. KEY SHARE, the weakest row lock, does not wait for sends and decisions
    (they take NO KEY UPDATE), so deliveries holding it queue nobody but the stop. Django
    has no KEY SHARE: the statement is written out. SQLite has no row locks (writes are
    serialized by the database), so there it is a plain read."""
    if lock and connection.vendor == "postgresql":
        with hot_cursor(connection) as cursor:
            cursor.execute(
                "SELECT sending_stopped FROM accounts_account WHERE id = %s FOR KEY SHARE",
                [account_id],
            )
            row = cursor.fetchone()
        return bool(row and row[0])
    return bool(
        Account.objects.filter(pk=account_id).values_list("sending_stopped", flat=True).first()
    )


def account_info(*, account: Account) -> dict[str, Any]:
    """The AccountInfo shape: settings, plan limits and what is used of them (read in one
    statement, ``account_usage``)."""
    limits = limits_for(account.plan)
    usage = account_usage(account=account)
    sent = usage.emails_sent_this_period
    return {
        "id": account.pk,
        "name": account.name,
        "slug": account.slug,
        "plan": account.plan,
        "oversight_email": account.oversight_email,
        "pending_oversight_email": usage.pending_oversight_email,
        "physical_address": account.physical_address or None,
        "use_case": account.use_case or None,
        "state": account.state,
        "is_active": account.is_active,
        "sending_disabled": account.sending_disabled,
        "sending_disabled_reason": account.sending_disabled_reason or None,
        "sending_stopped": account.sending_stopped,
        "sending_stopped_at": account.sending_stopped_at,
        "require_operator_approval": account.require_operator_approval,
        "approval_expiry_hours": account.approval_expiry_hours,
        "monthly_email_quota": limits.monthly_email_quota,
        "emails_sent_this_month": sent,
        "emails_remaining_this_month": max(0, limits.monthly_email_quota - sent),
        "max_mailboxes": limits.max_mailboxes,
        "storage_used_bytes": usage.storage_used_bytes,
        "max_storage_bytes": limits.max_storage_bytes,
        "max_api_keys": limits.max_api_keys,
        "created_at": account.created_at,
    }


def api_key_info(*, key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.pk,
        "name": key.name,
        "prefix": key.prefix,
        "scopes": key.scopes,
        "created_at": key.created_at,
        "last_used_at": key.last_used_at,
        "is_active": key.is_active,
    }


def api_key_get(*, account: Account, key_id: str) -> ApiKey:
    key = ApiKey.objects.filter(account=account, pk=key_id).first()
    if key is None:
        raise not_found(
            "api_key",
            "That API key does not exist in this account. List your keys with GET /v1/api-keys.",
        )
    return key


def api_key_list(*, account: Account) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(account=account)


API_KEY_PAGE_SIZE = 50


def api_key_page(*, account: Account, params: Mapping[str, Any], revoked: bool) -> Page:
    """The console's keys, newest first; revoked ones only when asked for."""
    keys = api_key_list(account=account)
    if not revoked:
        keys = keys.filter(is_active=True)
    return cursor_paginate(keys, params, default_limit=API_KEY_PAGE_SIZE)


def audit_entry_list(*, account: Account) -> QuerySet[AuditEntry]:
    return AuditEntry.objects.filter(account=account)


def audit_entry_page(*, account: Account, params: Mapping[str, Any]) -> Page:
    """One page of the audit log, newest first, filtered by ``AuditEntryFilter``."""
    entries = filtered(AuditEntryFilter(params, queryset=audit_entry_list(account=account)))
    return cursor_paginate(entries, params, default_limit=AUDIT_PAGE_SIZE)


def audit_log_filtered(*, account: Account, params: Mapping[str, Any]) -> QuerySet[AuditEntry]:
    """The console's audit log filtered by ``AuditLogFilter``: its page and its CSV export
    read the same rows, so the file is exactly what the page was showing (all pages)."""
    return filtered(AuditLogFilter(params, queryset=audit_entry_list(account=account)))


def audit_log_page(*, account: Account, params: Mapping[str, Any]) -> Page:
    return cursor_paginate(
        audit_log_filtered(account=account, params=params), params, default_limit=AUDIT_PAGE_SIZE
    )


# Where each audited resource lives, when it still exists: (resource type) -> the rows to
# look in and the fields a link to it needs. Email links need the mailbox too.
_AUDIT_RESOURCES: dict[str, tuple[QuerySet[Any], tuple[str, ...]]] = {
    "email": (Email.objects.all(), ("mailbox_id",)),
    "mailbox": (Mailbox.objects.filter(deleted_at__isnull=True), ()),
    "api_key": (ApiKey.objects.filter(is_active=True), ()),
    "webhook": (WebhookSubscription.objects.all(), ()),
    "domain": (Domain.objects.all(), ()),
    "operator": (Operator.objects.all(), ()),
    "admin_action": (
        AdminActionRequest.objects.filter(status=AdminActionStatus.PENDING),
        (),
    ),
}


def audit_resources_existing(
    *, account: Account, entries: list[AuditEntry]
) -> dict[tuple[str, str], dict[str, Any]]:
    """Which of the resources these entries concern still exist in the account: (type, id)
    -> the fields a link needs. One query per resource type on the page, never per entry."""
    wanted: dict[str, set[str]] = {}
    for entry in entries:
        if entry.resource_type in _AUDIT_RESOURCES and entry.resource_id:
            wanted.setdefault(entry.resource_type, set()).add(entry.resource_id)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for resource_type, ids in wanted.items():
        rows, fields = _AUDIT_RESOURCES[resource_type]
        for row in rows.filter(account=account, pk__in=ids).values("pk", *fields):
            found[(resource_type, str(row.pop("pk")))] = row
    suppressed = {entry.resource_id for entry in entries if entry.resource_type == "suppression"}
    if suppressed:
        for address in Suppression.objects.filter(
            account=account, email_address__in=suppressed
        ).values_list("email_address", flat=True):
            found[("suppression", address)] = {}
    return found


def audit_entry_info(*, entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.pk,
        "action": entry.action,
        "resource_type": entry.resource_type,
        "resource_id": entry.resource_id,
        "actor_key_id": entry.actor_key_id,
        "actor": entry.actor_label,
        "actor_kind": entry.actor_kind,
        "metadata": entry.metadata,
        "request_id": entry.request_id or None,
        "created_at": entry.created_at,
    }


@dataclass(frozen=True, slots=True)
class PlanMetric:
    """One thing the plan limits, counted as its limit check counts it."""

    label: str
    used: int
    limit: int
    in_bytes: bool = False

    @property
    def percent(self) -> int:
        """Share of the limit used, rounded down (a limit of 0 means none is allowed)."""
        if self.limit <= 0:
            return 100 if self.used else 0
        return self.used * 100 // self.limit

    @property
    def bar_percent(self) -> int:
        return min(self.percent, 100)

    @property
    def at_limit(self) -> bool:
        return self.used >= self.limit


def plan_usage(*, account: Account) -> list[PlanMetric]:
    """Every metric the plan limits against its limit, for the console's usage page. Each
    count is the one its limit check makes, so the page and the refusals agree."""
    limits = limits_for(account.plan)
    return [
        PlanMetric(
            "Emails sent this period",
            emails_sent_this_period(account=account),
            limits.monthly_email_quota,
        ),
        PlanMetric(
            "Mailboxes",
            Mailbox.objects.filter(account=account, is_active=True).count(),
            limits.max_mailboxes,
        ),
        PlanMetric(
            "Storage",
            storage_used_bytes(account=account),
            limits.max_storage_bytes,
            in_bytes=True,
        ),
        PlanMetric(
            "Custom domains", Domain.objects.filter(account=account).count(), limits.max_domains
        ),
        PlanMetric(
            "Webhooks",
            WebhookSubscription.objects.filter(account=account).count(),
            limits.max_webhooks,
        ),
        PlanMetric(
            "Active API keys",
            ApiKey.objects.filter(account=account, is_active=True).count(),
            limits.max_api_keys,
        ),
    ]


# --- Operators --------------------------------------------------------------------------


def usable_accounts() -> QuerySet[Account]:
    # A deactivated account's operators cannot sign in; pending accounts can, so the
    # operator may still find the activation step from the console.
    return Account.objects.exclude(state=AccountState.DEACTIVATED)


def operators_for_email(*, email: str) -> QuerySet[Operator]:
    return Operator.objects.filter(
        email__iexact=email, account__in=usable_accounts()
    ).select_related("account")


def operator_for_user(*, user_id: int, account_id: str | None) -> Operator | None:
    """The role the signed-in person acts in: the chosen account, else their first."""
    roles = Operator.objects.filter(user_id=user_id, account__in=usable_accounts()).select_related(
        "account"
    )
    if account_id:
        chosen = roles.filter(account_id=account_id).first()
        if chosen is not None:
            return chosen
    return roles.order_by("created_at", "id").first()


def operator_roles(*, user_id: int) -> list[Operator]:
    """Every account the person operates, by account name (the console's account switcher)."""
    return list(
        Operator.objects.filter(user_id=user_id).select_related("account").order_by("account__name")
    )


def operator_role_get(*, user_id: int, account_id: str) -> Operator | None:
    return (
        Operator.objects.filter(user_id=user_id, account_id=account_id)
        .select_related("account")
        .first()
    )


def operator_list(*, account: Account) -> QuerySet[Operator]:
    return (
        Operator.objects.filter(account=account).select_related("invited_by").order_by("created_at")
    )


def _rows(queryset: QuerySet[Any], fields: list[str]) -> list[dict[str, Any]]:
    # values() + iterator(): the export can be large; no model instances are built.
    return list(queryset.order_by("id").values(*fields).iterator(chunk_size=2000))


def account_export(*, account: Account) -> dict[str, Any]:
    """Everything the account owns, as JSON-ready data. Secrets (key hashes, webhook
    signing secrets) and message bodies are left out; email metadata is included."""
    return {
        "exported_at": timezone.now(),
        "account": account_info(account=account),
        "operators": _rows(account.operators.all(), ["id", "email", "name", "created_at"]),
        "mailboxes": _rows(
            Mailbox.objects.filter(account=account),
            [
                "id", "address", "display_name", "oversight_mode", "auto_cc", "auto_bcc",
                "forward_inbound", "signature_block", "default_gate_timing", "is_active",
                "created_at", "deleted_at",
            ],
        ),
        "emails": _rows(
            Email.objects.filter(account=account),
            [
                "id", "mailbox_id", "direction", "status", "from_address", "to", "cc",
                "subject", "thread_id", "message_id", "received_at", "sent_at", "delivered_at",
                "bounced_at", "bounce_type", "approved_at", "approved_by", "spam_score",
                "spam_verdict", "has_attachments", "tags",
            ],
        ),
        "contacts": _rows(account.contacts.all(), ["id", "name", "email", "tags", "created_at"]),
        "api_keys": [api_key_info(key=key) for key in api_key_list(account=account).order_by("id")],
        "webhooks": _rows(
            WebhookSubscription.objects.filter(account=account),
            ["id", "url", "events", "mailbox_id", "is_active", "created_at"],
        ),
        "suppressions": _rows(
            Suppression.objects.filter(account=account),
            ["id", "email_address", "reason", "mailbox_id", "created_at"],
        ),
        "audit_log": [
            audit_entry_info(entry=entry)
            for entry in audit_entry_list(account=account).order_by("id").iterator(2000)
        ],
    }  # fmt: skip
