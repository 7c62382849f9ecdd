from __future__ import annotations

from django.urls import include, path

# One route module per part of the mail core, so each can change without touching the others.
urlpatterns = [
    path("", include("mailboxes.routes.outbound")),
    path("", include("mailboxes.routes.reading")),
    path("", include("mailboxes.routes.webhooks")),
    path("", include("mailboxes.routes.domains")),
]
