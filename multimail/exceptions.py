"""Rendering of errors, for DRF views and for everything else under the API's paths.

``/v1`` answers the envelope of the error contract; a request that came through the compat
base URL (``multimail.compat``) answers the same error in MultiMail's own shape. Every error
of the API, whoever raises it (a view, a throttle, authentication, a middleware), is rendered
by ``error_response``, so the shape is chosen in this one place.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from kombu.exceptions import OperationalError as BrokerUnavailable
from psycopg.errors import DeadlockDetected, SerializationFailure
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework import exceptions as drf

from multimail.compat import is_compat_path, is_compat_request
from multimail.errors import ApiError

logger = logging.getLogger("multimail.api")

# DRF field error codes that mean "the field is not there".
_MISSING_CODES = {"required", "blank", "null", "empty", "missing"}


def request_id_of(request: Any) -> str:
    return str(getattr(request, "request_id", "") or "")


def envelope(error: ApiError, request_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": error.code,
        "message": error.message,
    }
    if error.param:
        body["param"] = error.param
    body["doc_url"] = f"{settings.PUBLIC_BASE_URL}/docs/errors#{error.code}"
    body["retryable"] = error.entry.is_retryable
    if error.errors:
        body["errors"] = error.errors
    body.update(error.extra)
    return {"ok": False, "error": body, "meta": {"request_id": request_id}}


def multimail_body(error: ApiError, request_id: str) -> dict[str, Any]:
    """MultiMail's own error shape, for its clients: the message as the string ``error``
    (what they show), every detail of the envelope beside it at the top level (where they
    look for details such as the warm-up fields), plus ``hint``, the catalog's fix, which
    MultiMail's clients show with a warm-up error."""
    detail = envelope(error, request_id)["error"]
    message = detail.pop("message")
    return {
        "error": message,
        **detail,
        "hint": detail.get("hint", error.entry.fix),
        "request_id": request_id,
    }


def error_response(request: Any, error: ApiError) -> JsonResponse:
    request_id = request_id_of(request)
    if error.status >= 500:
        logger.error(
            "api_error code=%s status=%s request_id=%s path=%s",
            error.code,
            error.status,
            request_id,
            getattr(request, "path", ""),
        )
    else:
        logger.info(
            "api_error code=%s status=%s request_id=%s path=%s",
            error.code,
            error.status,
            request_id,
            getattr(request, "path", ""),
        )
    body = (multimail_body if is_compat_request(request) else envelope)(error, request_id)
    response = JsonResponse(body, status=error.status)
    headers = dict(error.headers)
    if error.entry.is_retryable and error.status in (429, 503) and "Retry-After" not in headers:
        headers["Retry-After"] = "1" if error.status == 429 else "5"
    for name, value in headers.items():
        response[name] = value
    return response


def _flatten(detail: Any, prefix: str = "") -> list[dict[str, str]]:
    """Turn DRF's nested error detail into the envelope's ``errors`` list (dotted fields)."""
    issues: list[dict[str, str]] = []
    if isinstance(detail, Mapping):
        for key, value in detail.items():
            field = str(key) if key != "non_field_errors" else ""
            issues += _flatten(value, f"{prefix}.{field}".strip(".") if field else prefix)
    elif isinstance(detail, list):
        if detail and all(isinstance(item, drf.ErrorDetail) for item in detail):
            for item in detail:
                issues.append(
                    {"field": prefix, "code": item.code or "invalid", "message": str(item)}
                )
        else:
            for index, item in enumerate(detail):
                if item:
                    issues += _flatten(item, f"{prefix}.{index}".strip("."))
    elif isinstance(detail, drf.ErrorDetail):
        issues.append({"field": prefix, "code": detail.code or "invalid", "message": str(detail)})
    elif detail:
        issues.append({"field": prefix, "code": "invalid", "message": str(detail)})
    return issues


def validation_error_to_api_error(exc: drf.ValidationError) -> ApiError:
    issues = _flatten(exc.detail)
    if not issues:
        return ApiError("invalid_parameter", "Invalid request parameters.")
    codes = [issue["code"] for issue in issues]
    if "validation_error" in codes:
        code = "validation_error"
    elif issues[0]["code"] in _MISSING_CODES:
        code = "missing_parameter"
    else:
        code = "invalid_parameter"
    first = issues[0]
    field = first["field"] or None
    if len(issues) == 1:
        message = f"{first['message']}" if not field else f"{field}: {first['message']}"
        if code == "missing_parameter" and field:
            message = f"The {field} field is required. Include it in the request body."
        return ApiError(code, message, param=field)
    return ApiError(
        code, "Invalid request parameters; errors lists each one.", errors=issues, param=field
    )


def to_api_error(exc: Exception) -> ApiError | None:
    """Map any exception to the API error it stands for (None: not ours to map)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, drf.ValidationError):
        return validation_error_to_api_error(exc)
    if isinstance(exc, drf.NotAuthenticated):
        return ApiError(
            "authentication_required",
            "No API key was sent. Add Authorization: Bearer mm_live_YOUR_KEY.",
        )
    if isinstance(exc, drf.AuthenticationFailed):
        return ApiError("invalid_api_key")
    if isinstance(exc, drf.PermissionDenied | DjangoPermissionDenied):
        return ApiError("insufficient_permissions", str(exc) or None)
    if isinstance(exc, drf.NotFound | Http404):
        return ApiError("not_found", "Nothing exists at this path.")
    if isinstance(exc, drf.MethodNotAllowed):
        return ApiError("method_not_allowed", str(exc.detail))
    if isinstance(exc, drf.UnsupportedMediaType):
        return ApiError(
            "unsupported_media_type", "The body must be JSON: send Content-Type: application/json."
        )
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return ApiError(
            "payload_too_large",
            f"The request body is over the {limit}-byte limit. Send less per request.",
            limit_bytes=limit,
        )
    if isinstance(exc, drf.ParseError):
        return ApiError(
            "invalid_parameter", "The body is not valid JSON. Send a JSON object.", param="body"
        )
    if isinstance(exc, drf.Throttled):
        wait = int(getattr(exc, "wait", None) or 1)
        return ApiError("rate_limit_exceeded", headers={"Retry-After": str(max(wait, 1))})
    if isinstance(exc, OperationalError) and isinstance(
        exc.__cause__, DeadlockDetected | SerializationFailure
    ):
        # A deadlock or serialization failure: the database is up, this request's transaction
        # lost a race with a concurrent one and was rolled back.
        return ApiError(
            "service_unavailable",
            "The request collided with a concurrent one (database deadlock or serialization "
            "failure) and was rolled back; retry it.",
            headers={"Retry-After": "1"},
        )
    if isinstance(exc, OperationalError | InterfaceError):
        return ApiError(
            "service_unavailable",
            "The database is unreachable; retry shortly.",
            headers={"Retry-After": "5"},
        )
    # Redis backs the cache (throttles, idempotency, rate limits) and usually the broker:
    # while it is down the request cannot be counted or queued safely, so the client is told
    # to come back rather than getting a 500.
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        return ApiError(
            "service_unavailable",
            "The cache is unreachable; retry shortly.",
            headers={"Retry-After": "5"},
        )
    if isinstance(exc, BrokerUnavailable):
        return ApiError(
            "service_unavailable",
            "The task queue is unreachable; retry shortly.",
            headers={"Retry-After": "5"},
        )
    return None


def api_exception_handler(exc: Exception, context: Mapping[str, Any]) -> HttpResponse | None:
    request = context.get("request")
    error = to_api_error(exc)
    if error is None:
        if isinstance(exc, DatabaseError):
            logger.exception("database_error request_id=%s", request_id_of(request))
        else:
            logger.exception("unhandled request_id=%s", request_id_of(request))
        error = ApiError(
            "internal_error",
            "An unexpected error occurred. Retry; if it persists, contact "
            "support with the request_id.",
        )
    response = error_response(request, error)
    if isinstance(exc, drf.MethodNotAllowed) and "allowed" not in error.extra:
        view = context.get("view")
        allowed = getattr(view, "allowed_methods", None) if view is not None else None
        if allowed:
            response = error_response(
                request,
                ApiError(
                    "method_not_allowed",
                    error.message,
                    allowed=list(allowed),
                    headers={"Allow": ", ".join(allowed)},
                ),
            )
    return response


def is_api_path(request: HttpRequest) -> bool:
    path = request.path
    return path.startswith("/v1/") or path == "/v1" or is_compat_path(path)
