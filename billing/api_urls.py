from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from billing import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("billing/checkout", views.CheckoutView.as_view(), name="billing-checkout"),
    path("billing/portal", views.PortalView.as_view(), name="billing-portal"),
    path("billing/cancel", views.CancelView.as_view(), name="billing-cancel"),
    path(
        "billing/pricing-checkout",
        views.PricingCheckoutView.as_view(),
        name="billing-pricing-checkout",
    ),
    path("billing/session-key", views.SessionKeyView.as_view(), name="billing-session-key"),
    path(
        "billing/stripe-webhook", views.StripeWebhookView.as_view(), name="billing-stripe-webhook"
    ),
    path("usage", views.UsageView.as_view(), name="usage"),
]
