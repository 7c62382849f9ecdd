"""Mailboxes and sending."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from mailboxes.views import mailboxes, outbound

_MAILBOX = "mailboxes/<str:mailbox_id>"

urlpatterns: list[URLPattern | URLResolver] = [
    path("mailboxes", mailboxes.MailboxListCreateView.as_view(), name="mailbox-list"),
    path(_MAILBOX, mailboxes.MailboxDetailView.as_view(), name="mailbox-detail"),
    path(
        f"{_MAILBOX}/configure", mailboxes.MailboxConfigureView.as_view(), name="mailbox-configure"
    ),
    path(f"{_MAILBOX}/send", outbound.SendView.as_view(), name="mailbox-send"),
    path(f"{_MAILBOX}/reply/<str:email_id>", outbound.ReplyView.as_view(), name="mailbox-reply"),
    path(
        f"{_MAILBOX}/emails/<str:email_id>/schedule",
        outbound.ScheduleView.as_view(),
        name="email-schedule",
    ),
]
