"""Django admin for support staff: accounts and their operators, keys, audit log.

Support changes go through services (accounts.support) so they are audited with the staff
member's name; rows that are history (audit log, codes) are read-only.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.actors import Actor
from accounts.email_change import account_change
from accounts.models import (
    Account,
    AdminActionRequest,
    ApiKey,
    AuditEntry,
    Operator,
    OversightEmailChange,
)
from accounts.oversight_addresses import oversight_address_problem
from accounts.support import (
    support_account_deactivate,
    support_account_reactivate,
    support_activation_resend,
    support_admin_key_recover,
    support_sending_set,
)
from multimail.addresses import address_validator
from multimail.errors import ApiError
from multimail.header_fields import header_text_validator


class ReadOnlyAdmin(admin.ModelAdmin):
    """History and secrets-adjacent rows: support may look, never edit."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class SupportActionForm(ActionForm):
    reason = forms.CharField(
        required=False,
        max_length=200,
        label="Reason (shown to the operator)",
    )


def support_actor(request: HttpRequest, account: Account) -> Actor:
    return Actor.support(account, request.user.get_username())


def _each(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet[Account],
    run: Any,
    done: str,
) -> None:
    succeeded = 0
    for account in queryset:
        try:
            run(support_actor(request, account))
        except ApiError as error:
            modeladmin.message_user(request, f"{account.slug}: {error.message}", messages.ERROR)
        else:
            succeeded += 1
    if succeeded:
        modeladmin.message_user(request, f"{done}: {succeeded} account(s).", messages.SUCCESS)


class OperatorInline(admin.TabularInline):
    model = Operator
    fk_name = "account"
    fields = ("email", "name", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AccountAdminForm(forms.ModelForm):
    """A support edit is refused like the same change through the API: the rules are the
    shared ones, shown on the form instead of failing in the account service."""

    class Meta:
        model = Account
        fields = ("name", "oversight_email", "physical_address", "require_operator_approval")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "name" in self.fields:
            self.fields["name"].validators.append(header_text_validator)
        if "oversight_email" in self.fields:
            self.fields["oversight_email"].validators.append(address_validator)

    def clean_oversight_email(self) -> str:
        address = str(self.cleaned_data["oversight_email"])
        problem = oversight_address_problem(address)
        if problem:
            raise forms.ValidationError(problem, code="hosted_domain")
        return address


class OversightEmailChangeInline(admin.TabularInline):
    """Requested changes of the oversight email and what became of them (history)."""

    model = OversightEmailChange
    fields = ("created_at", "old_email", "new_email", "status", "requested_by", "decided_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-id",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    form = AccountAdminForm
    list_display = (
        "slug",
        "name",
        "oversight_email",
        "plan",
        "state",
        "sending_disabled",
        "created_at",
    )
    list_filter = ("plan", "state", "sending_disabled")
    search_fields = ("slug", "oversight_email", "name", "operators__email")
    ordering = ("-id",)
    readonly_fields = (
        "id",
        "slug",
        "use_case",
        "default_oversight_mode",
        "plan",
        "state",
        "deactivated_reason",
        "sending_disabled",
        "sending_disabled_reason",
        "period_start",
        "created_at",
        "activated_at",
        "confirmation_sent_at",
    )
    fields = (
        "id",
        "name",
        "slug",
        "oversight_email",
        "physical_address",
        "use_case",
        "plan",
        "state",
        "deactivated_reason",
        "sending_disabled",
        "sending_disabled_reason",
        "require_operator_approval",
        "default_oversight_mode",
        "period_start",
        "created_at",
        "activated_at",
        "confirmation_sent_at",
    )
    inlines = (OperatorInline, OversightEmailChangeInline)
    action_form = SupportActionForm
    actions = (
        "deactivate",
        "reactivate",
        "disable_sending",
        "enable_sending",
        "resend_activation",
        "recover_key",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Accounts come from signup (proof of work, activation code), never from admin.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Account, form: Any, change: bool) -> None:
        # Through the account service: audited, and a new oversight email is only requested:
        # it gains nothing until it confirms, and the current address can cancel or undo.
        account_change(
            actor=support_actor(request, obj),
            changes={name: form.cleaned_data[name] for name in form.changed_data},
        )
        if "oversight_email" in form.changed_data:
            self.message_user(
                request,
                f"{form.cleaned_data['oversight_email']} was asked to confirm; the oversight "
                "email changes once it does. The current address was told and can cancel.",
                messages.WARNING,
            )

    def _reason(self, request: HttpRequest) -> str:
        return str(request.POST.get("reason", ""))

    @admin.action(description="Deactivate (give a reason)")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Account]) -> None:
        reason = self._reason(request)
        _each(
            self,
            request,
            queryset,
            lambda actor: support_account_deactivate(actor=actor, reason=reason),
            "Deactivated",
        )

    @admin.action(description="Reactivate")
    def reactivate(self, request: HttpRequest, queryset: QuerySet[Account]) -> None:
        _each(
            self,
            request,
            queryset,
            lambda actor: support_account_reactivate(actor=actor),
            "Reactivated",
        )

    @admin.action(description="Disable sending (give a reason)")
    def disable_sending(self, request: HttpRequest, queryset: QuerySet[Account]) -> None:
        reason = self._reason(request)
        _each(
            self,
            request,
            queryset,
            lambda actor: support_sending_set(actor=actor, disabled=True, reason=reason),
            "Sending disabled",
        )

    @admin.action(description="Enable sending")
    def enable_sending(self, request: HttpRequest, queryset: QuerySet[Account]) -> None:
        _each(
            self,
            request,
            queryset,
            lambda actor: support_sending_set(actor=actor, disabled=False),
            "Sending enabled",
        )

    @admin.action(description="Resend the activation code")
    def resend_activation(self, request: HttpRequest, queryset: QuerySet[Account]) -> None:
        _each(
            self,
            request,
            queryset,
            lambda actor: support_activation_resend(actor=actor),
            "Activation code sent",
        )

    @admin.action(description="Recover: email a new admin key to the oversight email")
    def recover_key(self, request: HttpRequest, queryset: QuerySet[Account]) -> None:
        _each(
            self,
            request,
            queryset,
            lambda actor: support_admin_key_recover(actor=actor),
            "New admin key emailed",
        )


@admin.register(Operator)
class OperatorAdmin(ReadOnlyAdmin):
    list_display = ("email", "account", "name", "created_at")
    search_fields = ("email", "account__slug")
    list_select_related = ("account",)


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdmin):
    # Only the prefix: the hash is never shown (it would let anyone test guesses offline).
    list_display = ("prefix", "name", "account", "scopes", "is_active", "last_used_at")
    list_filter = ("is_active",)
    search_fields = ("prefix", "name", "account__slug")
    list_select_related = ("account",)
    fields = (
        "id",
        "account",
        "name",
        "prefix",
        "scopes",
        "is_active",
        "created_at",
        "last_used_at",
        "revoked_at",
    )


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "account",
        "actor_kind",
        "actor_label",
        "action",
        "resource_type",
        "resource_id",
    )
    list_filter = ("actor_kind", "resource_type")
    search_fields = ("account__slug", "action", "resource_id", "actor_label", "request_id")
    list_select_related = ("account",)
    # The audit log is long: keyset-friendly ordering by id, no total count per page.
    show_full_result_count = False


@admin.register(AdminActionRequest)
class AdminActionRequestAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "account", "action", "status", "decided_by")
    list_filter = ("status", "action")
    search_fields = ("account__slug", "action")
    list_select_related = ("account",)
    exclude = ("digest", "code")
