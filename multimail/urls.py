from __future__ import annotations

from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularJSONAPIView

from multimail import views
from multimail.compat import COMPAT_ROOT, NAMESPACE

# The JSON API: served at /v1/, and the same views again under the base URL for MultiMail's
# own clients (multimail.compat), where only the shape of errors differs.
api_urlpatterns: list[URLPattern | URLResolver] = [
    path(
        "openapi.json",
        SpectacularJSONAPIView.as_view(authentication_classes=[], permission_classes=[]),
        name="openapi",
    ),
    path("", include("accounts.api_urls")),
    path("", include("mailboxes.api_urls")),
    path("", include("oversight.api_urls")),
    path("", include("billing.api_urls")),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("health", views.health, name="health"),
    path("metrics", views.metrics, name="metrics"),
    path("docs/errors", views.error_docs, name="error-docs"),
    path("admin/", admin.site.urls),
    path("v1/", include(api_urlpatterns)),
    path(f"{COMPAT_ROOT}v1/", include((api_urlpatterns, "compat"), namespace=NAMESPACE)),
    path("", include("mailboxes.public_urls")),
    path("", include("console.urls")),
]
