"""Django admin for support staff: hosted approval links (read-only, never the token) and the
operator notifications with their delivery state."""

from __future__ import annotations

from django.contrib import admin

from accounts.admin import ReadOnlyAdmin
from oversight.models import ApprovalLink, OperatorNotification


@admin.register(ApprovalLink)
class ApprovalLinkAdmin(ReadOnlyAdmin):
    list_display = ("email", "created_at", "expires_at", "used_at", "replaced_at")
    search_fields = ("email__id",)
    exclude = ("token_hash",)


@admin.register(OperatorNotification)
class OperatorNotificationAdmin(ReadOnlyAdmin):
    list_display = ("email", "kind", "status", "attempts", "created_at", "sent_at")
    list_filter = ("kind", "status")
    search_fields = ("email__id", "account__slug", "recipient")
