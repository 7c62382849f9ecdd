"""The base URL for MultiMail's own clients: ``/compat/multimail/v1/...`` serves the /v1 API.

MultiMail's official clients (its MCP server, its Python SDK) read an error's ``error``
field as a string and a few lists under other names than the spec, so pointed at ``/v1``
they show ``[object Object]`` for every error. Pointed at ``https://HOST/compat/multimail``
they reach the same views, keys and services: the root URLconf mounts the API a second time
under this prefix, and the middleware below marks each request that came through it. The
one error renderer (``multimail.exceptions.error_response``) reads that mark and answers
MultiMail's own error shape; success bodies are the same, with the SDK's name for a list
beside the spec's where they differ (``LIST_ALIASES``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

# The base URL a client is given is ``https://HOST/compat/multimail``; it appends /v1/...
COMPAT_ROOT = "compat/multimail/"
_PATH_PREFIX = f"/{COMPAT_ROOT}"
# The URL namespace of the second mount, so reverse() of a route name still gives /v1.
NAMESPACE = "compat-multimail"

# route name -> (the spec's key, the key the official Python SDK reads): its list_pending
# reads "pending" and its list_webhooks reads "webhooks" (multimail 0.1.1, client.py).
LIST_ALIASES: dict[str, tuple[str, str]] = {
    "oversight-pending": ("emails", "pending"),
    "webhooks": ("subscriptions", "webhooks"),
}


def is_compat_path(path: str) -> bool:
    return path.startswith(_PATH_PREFIX)


def is_compat_request(request: Any) -> bool:
    """Did the request come through the compat base URL? (DRF's Request proxies the mark.)"""
    return bool(getattr(request, "compat_multimail", False))


class CompatBaseUrlMiddleware:
    """Marks compat requests first, so every later middleware (region block, body size,
    idempotency, throttles, authentication) and the exception handler render their errors
    in MultiMail's shape; adds the SDK's list names to the success bodies that need them."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.compat_multimail = is_compat_path(request.path)  # type: ignore[attr-defined]
        return self.get_response(request)

    def process_template_response(self, request: HttpRequest, response: Any) -> Any:
        # DRF's Response is a template response: its data is still unrendered here, so the
        # alias costs no JSON round trip and the view stays unaware of the prefix.
        match = request.resolver_match
        if not is_compat_request(request) or match is None:
            return response
        alias = LIST_ALIASES.get(match.url_name or "")
        data = getattr(response, "data", None)
        if alias is not None and isinstance(data, dict) and alias[0] in data:
            spec_key, sdk_key = alias
            response.data = {**data, sdk_key: data[spec_key]}
        return response


def exclude_from_schema(endpoints: list[tuple[Any, ...]], **kwargs: Any) -> list[tuple[Any, ...]]:
    """drf-spectacular preprocessing hook: the schema describes /v1 once, not its mirror."""
    return [endpoint for endpoint in endpoints if not is_compat_path(endpoint[0])]
