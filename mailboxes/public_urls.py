from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from mailboxes.views import public

urlpatterns: list[URLPattern | URLResolver] = [
    path(".well-known/multimail-signing-key", public.signing_key, name="well-known-signing-key"),
]
