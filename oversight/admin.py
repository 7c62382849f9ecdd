"""Django admin for support staff: hosted approval links (read-only, never the token)."""

from __future__ import annotations

from django.contrib import admin

from accounts.admin import ReadOnlyAdmin
from oversight.models import ApprovalLink


@admin.register(ApprovalLink)
class ApprovalLinkAdmin(ReadOnlyAdmin):
    list_display = ("email", "created_at", "expires_at", "used_at")
    search_fields = ("email__id",)
    exclude = ("token_hash",)
