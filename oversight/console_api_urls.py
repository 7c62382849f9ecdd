from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from oversight import console_api

urlpatterns: list[URLPattern | URLResolver] = [
    path(
        "operator/start-session",
        console_api.StartSessionView.as_view(),
        name="operator-start-session",
    ),
    path(
        "operator/verify-session",
        console_api.VerifySessionView.as_view(),
        name="operator-verify-session",
    ),
    path("operator/end-session", console_api.EndSessionView.as_view(), name="operator-end-session"),
    path("operator/session", console_api.SessionView.as_view(), name="operator-session"),
]
