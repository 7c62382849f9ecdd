"""Reading mail: lists, emails, attachments, tags, cancel, threads, spam, contacts,
suppression, and the provider webhooks that feed inbound mail and delivery events."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from mailboxes.views import provider_webhooks, reading

_EMAIL = "mailboxes/<str:mailbox_id>/emails/<str:email_id>"

urlpatterns: list[URLPattern | URLResolver] = [
    path("mailboxes/<str:mailbox_id>/emails", reading.EmailListView.as_view(), name="email-list"),
    path(_EMAIL, reading.EmailDetailView.as_view(), name="email-detail"),
    path(
        f"{_EMAIL}/attachments/<str:filename>/url",
        reading.AttachmentUrlView.as_view(),
        name="email-attachment-url",
    ),
    path(
        f"{_EMAIL}/attachments/<str:filename>",
        reading.AttachmentDownloadView.as_view(),
        name="email-attachment",
    ),
    path(f"{_EMAIL}/tags", reading.EmailTagsView.as_view(), name="email-tags"),
    path(f"{_EMAIL}/tags/<str:key>", reading.EmailTagDeleteView.as_view(), name="email-tag"),
    path(f"{_EMAIL}/cancel", reading.EmailCancelView.as_view(), name="email-cancel"),
    path(
        "mailboxes/<str:mailbox_id>/threads/<str:thread_id>",
        reading.ThreadView.as_view(),
        name="thread-detail",
    ),
    path("emails", reading.SpamListView.as_view(), name="spam-list"),
    path("emails/<str:email_id>/report-spam", reading.ReportSpamView.as_view(), name="spam-report"),
    path("emails/<str:email_id>/not-spam", reading.NotSpamView.as_view(), name="spam-not-spam"),
    path("contacts", reading.ContactsView.as_view(), name="contact-list"),
    path("contacts/<str:contact_id>", reading.ContactDetailView.as_view(), name="contact-detail"),
    path("suppression", reading.SuppressionListView.as_view(), name="suppression-list"),
    path(
        "suppression/<str:address>",
        reading.SuppressionDetailView.as_view(),
        name="suppression-detail",
    ),
    path(
        "webhooks/postmark-inbound",
        provider_webhooks.PostmarkInboundView.as_view(),
        name="postmark-inbound",
    ),
    path(
        "webhooks/postmark", provider_webhooks.PostmarkEventsView.as_view(), name="postmark-events"
    ),
]
