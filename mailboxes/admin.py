"""Django admin for support staff: mailboxes, emails (read-only bodies), contacts,
suppression, domains, webhooks and their deliveries."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.admin import ReadOnlyAdmin, support_actor
from mailboxes.models import (
    Attachment,
    Contact,
    DeliveryEvent,
    Domain,
    Email,
    Mailbox,
    Suppression,
    WebhookDelivery,
    WebhookSubscription,
)
from mailboxes.services.suppression import suppression_remove
from multimail.errors import ApiError


@admin.register(Mailbox)
class MailboxAdmin(ReadOnlyAdmin):
    list_display = ("address", "account", "oversight_mode", "is_active", "created_at")
    list_filter = ("oversight_mode", "is_active")
    search_fields = ("address", "account__slug")
    list_select_related = ("account",)


class AttachmentInline(admin.TabularInline):
    model = Attachment
    # Metadata only: the bytes stay out of the page.
    fields = ("filename", "content_type", "size")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Email)
class EmailAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "mailbox", "direction", "status", "from_address", "subject")
    list_filter = ("direction", "status")
    search_fields = ("id", "subject", "from_address", "mailbox__address", "account__slug")
    list_select_related = ("mailbox",)
    exclude = ("idempotency_key", "content_hash")
    inlines = (AttachmentInline,)
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Email]:
        # The list does not load bodies; the detail page does.
        queryset = super().get_queryset(request)
        url_name = request.resolver_match.url_name if request.resolver_match else None
        if url_name and url_name.endswith("changelist"):
            return queryset.defer("markdown", "html", "text", "headers")
        return queryset


@admin.register(Suppression)
class SuppressionAdmin(ReadOnlyAdmin):
    list_display = ("email_address", "account", "reason", "created_at")
    list_filter = ("reason",)
    search_fields = ("email_address", "account__slug")
    list_select_related = ("account",)
    actions = ("remove",)

    @admin.action(description="Remove (hard bounces stay)")
    def remove(self, request: HttpRequest, queryset: QuerySet[Suppression]) -> None:
        for entry in queryset.select_related("account"):
            try:
                suppression_remove(
                    actor=support_actor(request, entry.account), address=entry.email_address
                )
            except ApiError as error:
                self.message_user(request, error.message, messages.ERROR)
            else:
                self.message_user(request, f"{entry.email_address} removed.", messages.SUCCESS)


@admin.register(Domain)
class DomainAdmin(ReadOnlyAdmin):
    list_display = ("domain", "account", "status", "verified_at", "last_checked_at")
    list_filter = ("status",)
    search_fields = ("domain", "account__slug")
    list_select_related = ("account",)


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(ReadOnlyAdmin):
    list_display = ("url", "account", "is_active", "failing_since", "created_at")
    list_filter = ("is_active",)
    search_fields = ("url", "account__slug")
    list_select_related = ("account",)
    # Secrets sign deliveries; support has no use for them.
    exclude = ("signing_secret", "previous_secret")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "account", "event_type", "url", "status", "attempts")
    list_filter = ("status", "event_type")
    search_fields = ("account__slug", "url", "event_id")
    list_select_related = ("account",)
    show_full_result_count = False


@admin.register(Contact)
class ContactAdmin(ReadOnlyAdmin):
    list_display = ("name", "email", "account", "created_at")
    search_fields = ("name", "email", "account__slug")
    list_select_related = ("account",)


@admin.register(DeliveryEvent)
class DeliveryEventAdmin(ReadOnlyAdmin):
    list_display = ("occurred_at", "account", "event_type", "recipient")
    list_filter = ("event_type",)
    search_fields = ("recipient", "account__slug", "provider_event_id")
    list_select_related = ("account",)
    show_full_result_count = False
