"""Request ids, the error envelope outside DRF, and the Idempotency-Key contract."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse

from multimail.errors import ApiError
from multimail.exceptions import error_response, is_api_path, to_api_error
from multimail.idempotency import (
    idempotency_claim,
    idempotency_complete,
    idempotency_hashes,
    idempotency_release,
)
from multimail.ids import new_id
from multimail.logs import request_id_var
from multimail.models import IdempotencyRecord
from multimail.ratelimit import client_ip

logger = logging.getLogger("multimail.api")

_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
Handler = Callable[[HttpRequest], HttpResponse]


class RequestIdMiddleware:
    """Every response carries X-Request-Id; a sane client-sent one is echoed. Every log line
    written while the request runs carries it too (``multimail.logs``)."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        sent = request.headers.get("X-Request-Id", "")
        request_id = sent if _SANE_REQUEST_ID.match(sent) else f"req_{new_id()}"
        request.request_id = request_id  # type: ignore[attr-defined]
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-Id"] = request_id
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
    limits are not stored, so the client can retry them with the same key. The records
    live in the database (``multimail.idempotency``), shared by every process.
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
        scope, key_hash = idempotency_hashes(credential=credential, key=key)
        fingerprint = hashlib.sha256(
            request.method.encode() + request.path.encode() + b"\n" + request.body
        ).hexdigest()
        try:
            claim = idempotency_claim(scope=scope, key_hash=key_hash, fingerprint=fingerprint)
        except DatabaseError as error:
            logger.warning(
                "idempotency_store_unavailable request_id=%s", getattr(request, "request_id", "")
            )
            return error_response(
                request,
                to_api_error(error)
                or ApiError(
                    "service_unavailable",
                    "The idempotency store is unreachable; retry shortly.",
                    headers={"Retry-After": "5"},
                ),
            )
        if not claim.claimed:
            return self._answer_for_existing(request, claim.record, fingerprint)
        try:
            response = self.get_response(request)
        except BaseException:
            idempotency_release(claim=claim)
            raise
        if response.status_code >= 500 or response.status_code == 429 or response.streaming:
            idempotency_release(claim=claim)
            return response
        idempotency_complete(
            claim=claim,
            status=response.status_code,
            body=response.content.decode("utf-8", errors="replace"),
            content_type=response.get("Content-Type", "application/json"),
        )
        return response

    @staticmethod
    def _answer_for_existing(
        request: HttpRequest, record: IdempotencyRecord, fingerprint: str
    ) -> HttpResponse:
        if record.fingerprint != fingerprint:
            return error_response(
                request,
                ApiError(
                    "idempotency_conflict",
                    "This Idempotency-Key was used with a different request body. Use a fresh "
                    "key for a different request.",
                    param="Idempotency-Key",
                ),
            )
        if record.state == IdempotencyRecord.State.IN_FLIGHT or record.response_status is None:
            return error_response(
                request,
                ApiError(
                    "idempotency_conflict",
                    "A request with this Idempotency-Key is still in flight. Wait for it to "
                    "finish, then retry.",
                    param="Idempotency-Key",
                ),
            )
        # The first answer, whatever happened since (the email sent, rejected, deleted):
        # the key stands for that one request.
        replay = HttpResponse(
            record.response_body.encode(),
            status=record.response_status,
            content_type=record.response_content_type,
        )
        replay["Idempotent-Replayed"] = "true"
        return replay
