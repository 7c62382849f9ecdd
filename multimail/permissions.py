"""Scope permissions. A view names the scope per method:

    required_scopes = {"GET": "read", "POST": "admin"}

``admin`` includes ``read`` and ``oversight`` includes ``oversight_read``. A tuple names
scopes any one of which will do: ``{"POST": ("admin", "oversight")}``.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from multimail.authentication import ApiPrincipal
from multimail.errors import ApiError

IMPLIED_BY = {
    "read": {"read", "admin"},
    "oversight_read": {"oversight_read", "oversight"},
}


def has_scope(scopes: list[str], required: str | tuple[str, ...]) -> bool:
    alternatives = (required,) if isinstance(required, str) else required
    return any(IMPLIED_BY.get(scope, {scope}) & set(scopes) for scope in alternatives)


def require_scope(request: Request, required: str | tuple[str, ...]) -> None:
    """For checks inside a view, when the scope depends on the request body. A tuple of
    scopes: any one of them will do."""
    principal = request.user
    if not isinstance(principal, ApiPrincipal):
        raise ApiError("authentication_required")
    principal_require_scope(principal, required)


def principal_require_scope(principal: ApiPrincipal, required: str | tuple[str, ...]) -> None:
    """The scope check for a caller outside DRF (the event stream, served beside it)."""
    alternatives = (required,) if isinstance(required, str) else required
    if not has_scope(principal.api_key.scopes, alternatives):
        named = " or ".join(alternatives)
        raise ApiError(
            "insufficient_permissions",
            f"This API key lacks the {named} scope this operation needs. Use a key with "
            f"{named} scope" + (" (admin includes read)." if required == "read" else "."),
            required_scope=alternatives[0],
        )


class ScopePermission(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        scopes: dict[str, str | tuple[str, ...]] | None = getattr(view, "required_scopes", None)
        if scopes is None:
            return True
        required = scopes.get(request.method or "GET") or (
            scopes.get("GET") if request.method in ("HEAD", "OPTIONS") else None
        )
        if required is None:
            return True
        if not isinstance(request.user, ApiPrincipal):
            raise ApiError(
                "authentication_required",
                "No API key was sent. Add Authorization: Bearer mm_live_YOUR_KEY.",
            )
        require_scope(request, required)
        return True
