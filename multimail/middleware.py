"""Request ids, the error envelope outside DRF, and the Idempotency-Key contract."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse

from multimail.errors import ApiError
from multimail.exceptions import error_response, is_api_path, to_api_error
from multimail.ids import new_id
from multimail.ratelimit import client_ip

logger = logging.getLogger("multimail.api")

_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
Handler = Callable[[HttpRequest], HttpResponse]


class RequestIdMiddleware:
    """Every response carries X-Request-Id; a sane client-sent one is echoed."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        sent = request.headers.get("X-Request-Id", "")
        request.request_id = sent if _SANE_REQUEST_ID.match(sent) else f"req_{new_id()}"  # type: ignore[attr-defined]
        response = self.get_response(request)
        response["X-Request-Id"] = request.request_id  # type: ignore[attr-defined]
        return response


class ApiErrorEnvelopeMiddleware:
    """Under /v1/, errors raised or answered outside DRF still use the envelope.

    Covers Django's own 404 (no route), 405 (plain views), 413 (body over the limit, checked
    here because DRF streams the body past Django's size check) and 500.
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not is_api_path(request):
            return self.get_response(request)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if limit and length > limit:
            return error_response(
                request,
                ApiError(
                    "payload_too_large",
                    f"The request body is {length} bytes; the limit is {limit}. "
                    "Send less per request.",
                    limit_bytes=limit,
                ),
            )
        response = self.get_response(request)
        if response.status_code < 400 or response.get("Content-Type", "").startswith(
            "application/json"
        ):
            return response
        return self._rewrite(request, response)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_api_path(request):
            return None
        error = to_api_error(exception)
        if error is None:
            logger.exception("unhandled request_id=%s", getattr(request, "request_id", ""))
            error = ApiError(
                "internal_error",
                "An unexpected error occurred. Retry; if it persists, contact "
                "support with the request_id.",
            )
        return error_response(request, error)

    @staticmethod
    def _rewrite(request: HttpRequest, response: HttpResponse) -> HttpResponse:
        status = response.status_code
        if status == 404:
            error = ApiError("not_found", f"No endpoint at {request.path}. See /v1/openapi.json.")
        elif status == 405:
            allowed = [m.strip() for m in response.get("Allow", "").split(",") if m.strip()]
            error = ApiError(
                "method_not_allowed",
                f"{request.method} is not supported here; use {', '.join(allowed)}.",
                allowed=allowed,
                headers={"Allow": ", ".join(allowed)},
            )
        elif status == 413:
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            error = ApiError("payload_too_large", limit_bytes=limit)
        elif status == 415:
            error = ApiError("unsupported_media_type")
        elif status == 503:
            error = ApiError("service_unavailable")
        elif status >= 500:
            error = ApiError(
                "internal_error",
                "An unexpected error occurred. Retry; if it persists, contact "
                "support with the request_id.",
            )
        else:
            return response
        return error_response(request, error)


class IdempotencyMiddleware:
    """``Idempotency-Key`` on any POST under /v1/: the stored response is replayed for 24 h.

    The key is scoped to the credential that sent it (or the client address for public
    endpoints). A second request with the key while the first is in flight, or with a body
    whose fingerprint differs, answers ``idempotency_conflict``. Server errors and rate
    limits are not stored, so the client can retry them with the same key.
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or key is None or not is_api_path(request):
            return self.get_response(request)
        if not key or len(key) > 255:
            return error_response(
                request,
                ApiError(
                    "invalid_parameter",
                    "Idempotency-Key must be 1 to 255 characters.",
                    param="Idempotency-Key",
                ),
            )
        credential = (
            request.headers.get("Authorization")
            or request.headers.get("X-API-Key")
            or f"ip:{client_ip(request)}"
        )
        scope = hashlib.sha256(credential.encode()).hexdigest()[:32]
        cache_key = f"idem:{scope}:{hashlib.sha256(key.encode()).hexdigest()}"
        fingerprint = hashlib.sha256(
            request.method.encode() + request.path.encode() + b"\n" + request.body
        ).hexdigest()
        try:
            claimed = cache.add(
                cache_key,
                {"state": "in_flight", "fp": fingerprint},
                settings.IDEMPOTENCY_TTL_SECONDS,
            )
            stored: dict[str, Any] | None = None if claimed else cache.get(cache_key)
        except Exception:  # the cache backend's own errors differ by backend
            logger.warning(
                "idempotency_cache_unavailable request_id=%s", getattr(request, "request_id", "")
            )
            return error_response(
                request,
                ApiError(
                    "service_unavailable",
                    "The idempotency store is unreachable; retry shortly.",
                    headers={"Retry-After": "5"},
                ),
            )
        if not claimed:
            if stored is None:  # expired between add and get: treat as in flight, be safe
                stored = {"state": "in_flight", "fp": fingerprint}
            if stored["fp"] != fingerprint:
                return error_response(
                    request,
                    ApiError(
                        "idempotency_conflict",
                        "This Idempotency-Key was used with a different request body. Use a fresh "
                        "key for a different request.",
                        param="Idempotency-Key",
                    ),
                )
            if stored["state"] == "in_flight":
                return error_response(
                    request,
                    ApiError(
                        "idempotency_conflict",
                        "A request with this Idempotency-Key is still in flight. Wait for it to "
                        "finish, then retry.",
                        param="Idempotency-Key",
                    ),
                )
            replay = HttpResponse(
                stored["body"].encode(),
                status=stored["status"],
                content_type=stored["content_type"],
            )
            replay["Idempotent-Replayed"] = "true"
            return replay
        try:
            response = self.get_response(request)
        except BaseException:
            cache.delete(cache_key)
            raise
        if response.status_code >= 500 or response.status_code == 429 or response.streaming:
            cache.delete(cache_key)
            return response
        body = response.content.decode("utf-8", errors="replace")
        if _is_idempotency_conflict(response, body):
            return response
        cache.set(
            cache_key,
            {
                "state": "done",
                "fp": fingerprint,
                "status": response.status_code,
                "body": body,
                "content_type": response.get("Content-Type", "application/json"),
            },
            settings.IDEMPOTENCY_TTL_SECONDS,
        )
        return response


def _is_idempotency_conflict(response: HttpResponse, body: str) -> bool:
    if response.status_code != 409 or not isinstance(response, JsonResponse | HttpResponse):
        return False
    try:
        return json.loads(body).get("error", {}).get("code") == "idempotency_conflict"
    except (ValueError, AttributeError):
        return False
