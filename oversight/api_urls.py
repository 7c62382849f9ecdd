from __future__ import annotations

from django.urls import path

from oversight import views, views_rules

urlpatterns = [
    path("oversight/pending", views.PendingListView.as_view(), name="oversight-pending"),
    path("oversight/decide", views.DecideView.as_view(), name="oversight-decide"),
    path("oversight/stop", views.StopView.as_view(), name="oversight-stop"),
    path("oversight/resume", views.ResumeView.as_view(), name="oversight-resume"),
    path(
        "mailboxes/<str:mailbox_id>/request-upgrade",
        views.RequestUpgradeView.as_view(),
        name="mailbox-request-upgrade",
    ),
    path("mailboxes/<str:mailbox_id>/upgrade", views.UpgradeView.as_view(), name="mailbox-upgrade"),
    path(
        "mailboxes/<str:mailbox_id>/oversight-rules",
        views_rules.OversightRulesView.as_view(),
        name="mailbox-oversight-rules",
    ),
    path("approve/<str:token>", views.approve_page, name="approve-page"),
]
