from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from mailboxes.views import domains

urlpatterns: list[URLPattern | URLResolver] = [
    path("domains", domains.DomainListCreateView.as_view(), name="domains"),
    path("domains/<str:domain_id>", domains.DomainDetailView.as_view(), name="domain"),
    path(
        "domains/<str:domain_id>/verify", domains.DomainVerifyView.as_view(), name="domain-verify"
    ),
]
