"""Per-key request budgets: reads (GET/HEAD) and writes count separately."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from multimail.authentication import RATE_WINDOW_SECONDS, ApiPrincipal, api_key_budget
from multimail.errors import ApiError
from multimail.ratelimit import hit


class ApiKeyRateThrottle(BaseThrottle):
    # Authentication counts the request with the remembered principal's version check.
    counted_by_authentication = True

    def allow_request(self, request: Request, view: Any) -> bool:
        principal = request.user
        if not isinstance(principal, ApiPrincipal):
            return True
        budget = api_key_budget(principal.api_key.pk, str(request.method))
        limit_type, limit = budget.limit_type, budget.limit
        # Authentication counted the request already when it checked the remembered
        # principal's version in the same round trip.
        result = principal.counted or hit(
            budget.bucket, limit=limit, window_seconds=RATE_WINDOW_SECONDS
        )
        if not result.allowed:
            raise ApiError(
                "rate_limit_exceeded",
                f"This key passed its {limit_type} budget of {limit} requests a minute. Wait "
                f"{result.retry_after} s (Retry-After) and back off.",
                limit_type=limit_type,
                headers={"Retry-After": str(result.retry_after)},
            )
        return True
