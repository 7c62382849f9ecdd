"""What the ASGI paths served beside Django (``/mcp``, the event stream) share with the
Django application: the API's key authentication, its host and HTTPS checks, and its
error envelope as a JSON answer."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.http.request import split_domain_port, validate_host
from rest_framework.request import Request
from starlette.types import Scope, Send

from multimail.authentication import ApiKeyAuthentication, ApiPrincipal
from multimail.compliance import region_block_error
from multimail.errors import ApiError


def request_headers(scope: Scope) -> dict[str, str]:
    return {
        key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]
    }


def _django_request(headers: dict[str, str]) -> HttpRequest:
    django_request = HttpRequest()
    for name, value in headers.items():
        django_request.META["HTTP_" + name.upper().replace("-", "_")] = value
    return django_request


def key_principal(headers: dict[str, str], *, missing: str) -> ApiPrincipal:
    """The API's verdict on the request's credentials: the key's principal, or the API's
    ApiError (``missing`` is the message when no key was sent). Reads the database: call it
    on a thread, and close the thread's connections after."""
    django_request = _django_request(
        {name: headers[name] for name in ("authorization", "x-api-key") if name in headers}
    )
    authenticated = ApiKeyAuthentication().authenticate(Request(django_request))
    if authenticated is None:
        raise ApiError("authentication_required", missing)
    return authenticated[0]


def region_refusal(headers: dict[str, str]) -> ApiError | None:
    """The region block every Django path has (``multimail.compliance``)."""
    return region_block_error(_django_request(headers))


def host_allowed(headers: dict[str, str]) -> bool:
    """The host check Django applies to every other path (ALLOWED_HOSTS)."""
    domain, _ = split_domain_port(headers.get("host", ""))
    return bool(domain) and validate_host(domain, settings.ALLOWED_HOSTS)


def is_secure(scope: Scope, headers: dict[str, str]) -> bool:
    """Django's ``request.is_secure()``: https, or the proxy's header when it is trusted."""
    if scope.get("scheme") == "https":
        return True
    proxy_header = settings.SECURE_PROXY_SSL_HEADER
    if proxy_header is None:
        return False
    name, value = proxy_header
    sent = headers.get(name.removeprefix("HTTP_").replace("_", "-").lower(), "")
    return sent.split(",")[0].strip() == value


async def json_answer(send: Send, status: int, body: dict[str, Any], headers: list[Any]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
