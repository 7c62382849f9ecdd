from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularJSONAPIView

from multimail import views

urlpatterns = [
    path("", views.home, name="home"),
    path("health", views.health, name="health"),
    path("metrics", views.metrics, name="metrics"),
    path("docs/errors", views.error_docs, name="error-docs"),
    path(
        "v1/openapi.json",
        SpectacularJSONAPIView.as_view(authentication_classes=[], permission_classes=[]),
        name="openapi",
    ),
    path("admin/", admin.site.urls),
    path("v1/", include("accounts.api_urls")),
    path("v1/", include("mailboxes.api_urls")),
    path("v1/", include("oversight.api_urls")),
    path("v1/", include("billing.api_urls")),
    path("", include("mailboxes.public_urls")),
    path("", include("console.urls")),
]
