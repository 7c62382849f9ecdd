"""Per-key request budgets: reads (GET/HEAD) and writes count separately."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from multimail.authentication import ApiPrincipal
from multimail.errors import ApiError
from multimail.ratelimit import hit


class ApiKeyRateThrottle(BaseThrottle):
    def allow_request(self, request: Request, view: Any) -> bool:
        principal = request.user
        if not isinstance(principal, ApiPrincipal):
            return True
        is_read = request.method in ("GET", "HEAD", "OPTIONS")
        limit_type = "read" if is_read else "send"
        limit = (
            settings.API_RATE_LIMIT_READ_PER_MINUTE
            if is_read
            else settings.API_RATE_LIMIT_SEND_PER_MINUTE
        )
        result = hit(f"key:{principal.api_key.pk}:{limit_type}", limit=limit, window_seconds=60)
        if not result.allowed:
            raise ApiError(
                "rate_limit_exceeded",
                f"This key passed its {limit_type} budget of {limit} requests a minute. Wait "
                f"{result.retry_after} s (Retry-After) and back off.",
                limit_type=limit_type,
                headers={"Retry-After": str(result.retry_after)},
            )
        return True
