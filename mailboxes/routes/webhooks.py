from __future__ import annotations

from django.urls import URLPattern, URLResolver, path, re_path

from mailboxes.views import public, webhooks

ID = r"(?P<webhook_id>[0-9A-Za-z]{26})"

urlpatterns: list[URLPattern | URLResolver] = [
    path("webhooks", webhooks.WebhookListCreateView.as_view(), name="webhooks"),
    # Ids are 26-character ULIDs: the pattern leaves webhooks/postmark* to the inbound routes.
    re_path(rf"^webhooks/{ID}$", webhooks.WebhookDetailView.as_view(), name="webhook"),
    re_path(
        rf"^webhooks/{ID}/rotate-secret$",
        webhooks.WebhookRotateSecretView.as_view(),
        name="webhook-rotate-secret",
    ),
    re_path(rf"^webhooks/{ID}/test$", webhooks.WebhookTestView.as_view(), name="webhook-test"),
    path(
        "webhook-deliveries",
        webhooks.WebhookDeliveryListView.as_view(),
        name="webhook-deliveries",
    ),
    path(
        "mailboxes/<str:mailbox_id>/webhook-secret",
        webhooks.MailboxWebhookSecretView.as_view(),
        name="mailbox-webhook-secret",
    ),
    path(
        "mailboxes/<str:mailbox_id>/webhook-secret/rotate",
        webhooks.MailboxWebhookSecretRotateView.as_view(),
        name="mailbox-webhook-secret-rotate",
    ),
    path("unsubscribe/<str:token>", public.unsubscribe, name="unsubscribe"),
]
