"""Scope permissions. A view names the scope per method:

    required_scopes = {"GET": "read", "POST": "admin"}

``admin`` includes ``read`` and ``oversight`` includes ``oversight_read``.
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


def has_scope(scopes: list[str], required: str) -> bool:
    return bool(IMPLIED_BY.get(required, {required}) & set(scopes))


def require_scope(request: Request, required: str) -> None:
    """For checks inside a view, when the scope depends on the request body."""
    principal = request.user
    if not isinstance(principal, ApiPrincipal):
        raise ApiError("authentication_required")
    if not has_scope(principal.api_key.scopes, required):
        raise ApiError(
            "insufficient_permissions",
            f"This API key lacks the {required} scope this operation needs. Use a key with "
            f"{required} scope" + (" (admin includes read)." if required == "read" else "."),
            required_scope=required,
        )


class ScopePermission(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        scopes: dict[str, str] | None = getattr(view, "required_scopes", None)
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
