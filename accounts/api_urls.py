from __future__ import annotations

from django.urls import path

from accounts import session_views, views

urlpatterns = [
    path("account", views.AccountView.as_view(), name="account"),
    path("account/challenge", views.ChallengeView.as_view(), name="account-challenge"),
    path(
        "account/resend-confirmation",
        views.ResendConfirmationView.as_view(),
        name="account-resend-confirmation",
    ),
    path("slug-check/<str:slug>", views.SlugCheckView.as_view(), name="slug-check"),
    path("confirm", views.ConfirmView.as_view(), name="confirm"),
    path("confirm/<str:code>", views.ConfirmCodeRedirectView.as_view(), name="confirm-code"),
    path("api-keys", views.ApiKeyListView.as_view(), name="api-keys"),
    path("api-keys/<str:key_id>", views.ApiKeyDetailView.as_view(), name="api-key-detail"),
    path("audit-log", views.AuditLogView.as_view(), name="audit-log"),
    path("export", views.ExportView.as_view(), name="export"),
    path(
        "operator/start-session",
        session_views.StartSessionView.as_view(),
        name="operator-start-session",
    ),
    path(
        "operator/verify-session",
        session_views.VerifySessionView.as_view(),
        name="operator-verify-session",
    ),
    path(
        "operator/end-session", session_views.EndSessionView.as_view(), name="operator-end-session"
    ),
    path("operator/session", session_views.SessionView.as_view(), name="operator-session"),
]
