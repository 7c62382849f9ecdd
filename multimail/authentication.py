"""API-key authentication: ``Authorization: Bearer mm_live_...`` or ``X-API-Key``."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from accounts.actors import Actor
from accounts.models import AccountState, ApiKey
from accounts.services import KEY_PREFIX, LOOKUP_PREFIX_LENGTH, api_key_touch, hash_key
from multimail.errors import ApiError


@dataclass(frozen=True, slots=True)
class ApiPrincipal:
    """What ``request.user`` is for an API call: the key and its account."""

    api_key: ApiKey

    is_authenticated = True
    is_anonymous = False

    @property
    def account(self) -> Any:
        return self.api_key.account

    @property
    def actor(self) -> Actor:
        return Actor.for_key(self.api_key)


def _credential(request: Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise ApiError(
                "authentication_required",
                "The Authorization header must be 'Bearer mm_live_YOUR_KEY'.",
            )
        return value.strip()
    api_key = request.headers.get("X-API-Key")
    if api_key is not None:
        return api_key.strip()
    return None


def api_principal(request: Request) -> ApiPrincipal:
    """The caller of an API view that requires a scope: ``ScopePermission`` has already
    authenticated an API key before any handler runs, so ``request.user`` is its principal."""
    assert isinstance(request.user, ApiPrincipal)
    return request.user


def api_key_authenticate(raw: str) -> ApiKey:
    """The active key of an active account that ``raw`` is, or the catalog error saying why
    not. Every door that takes an API key (the API, MCP, SMTP submission) checks it here."""
    if not raw.startswith(KEY_PREFIX) or len(raw) < LOOKUP_PREFIX_LENGTH + 8:
        raise ApiError(
            "authentication_required",
            "That is not a MultiMail API key; keys start with mm_live_.",
        )
    key = ApiKey.objects.select_related("account").filter(prefix=raw[:LOOKUP_PREFIX_LENGTH]).first()
    if key is None or not hmac.compare_digest(key.key_hash, hash_key(raw)):
        raise ApiError("invalid_api_key")
    api_key_ensure_usable(key)
    api_key_touch(api_key=key)
    return key


def api_key_ensure_usable(key: ApiKey) -> None:
    """The key is not revoked and its account is active: checked on every use of a key,
    and again by a door that holds a key across requests (an SMTP session)."""
    if not key.is_active:
        raise ApiError(
            "invalid_api_key",
            "This API key was revoked. Create a new one with "
            "POST /v1/api-keys or check GET /v1/api-keys.",
        )
    account = key.account
    if account.state == AccountState.PENDING:
        raise ApiError("account_not_activated")
    if account.state == AccountState.DEACTIVATED:
        reason = account.deactivated_reason or "no reason given"
        raise ApiError(
            "account_deactivated",
            f"This account is deactivated ({reason}). Check the oversight email "
            "for the notice and contact support for reactivation.",
            reason=account.deactivated_reason or None,
        )


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[ApiPrincipal, ApiKey] | None:
        raw = _credential(request)
        if raw is None:
            return None
        key = api_key_authenticate(raw)
        return ApiPrincipal(key), key

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 (not 403) when credentials are missing.
        return 'Bearer realm="api"'


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "multimail.authentication.ApiKeyAuthentication"
    name = ["bearerAuth", "ApiKeyAuth"]
    priority = 1

    def get_security_definition(self, auto_schema: Any) -> list[dict[str, str]]:
        return [
            {"type": "http", "scheme": "bearer", "bearerFormat": "mm_live_..."},
            {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        ]

    def get_security_requirement(self, auto_schema: Any) -> list[dict[str, list[Any]]]:
        # Either header authenticates: two alternative requirements. One requirement naming
        # both schemes would mean that both headers must be sent.
        return [{name: []} for name in self.name]
