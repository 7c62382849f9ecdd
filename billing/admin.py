"""Django admin for support staff: subscriptions, Stripe events, usage (read-only: Stripe
is the source of truth and its webhooks the only writer)."""

from __future__ import annotations

from django.contrib import admin

from accounts.admin import ReadOnlyAdmin
from billing.models import PendingSessionKey, StripeEvent, Subscription, UsageDaily


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdmin):
    list_display = (
        "account",
        "plan",
        "interval",
        "status",
        "cancel_at_period_end",
        "current_period_end",
    )
    list_filter = ("plan", "status", "cancel_at_period_end")
    search_fields = ("account__slug", "stripe_customer_id", "stripe_subscription_id")
    list_select_related = ("account",)


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "type", "account", "outcome", "received_at")
    list_filter = ("type", "outcome")
    search_fields = ("id", "account__slug")


@admin.register(UsageDaily)
class UsageDailyAdmin(ReadOnlyAdmin):
    list_display = ("date", "account", "event_type", "count")
    list_filter = ("event_type",)
    search_fields = ("account__slug",)
    list_select_related = ("account",)


@admin.register(PendingSessionKey)
class PendingSessionKeyAdmin(ReadOnlyAdmin):
    list_display = ("checkout_session_id", "account", "status", "created_at", "expires_at")
    list_filter = ("status",)
    exclude = ("key_ciphertext",)
