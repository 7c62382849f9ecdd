from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from mailboxes.views import public, reading

urlpatterns: list[URLPattern | URLResolver] = [
    path(".well-known/multimail-signing-key", public.signing_key, name="well-known-signing-key"),
    # Signed, expiring attachment links handed out by .../attachments/{filename}/url.
    path("attachments/<str:token>", reading.attachment_link_download, name="attachment-download"),
]
