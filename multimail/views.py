"""The home page, health, metrics, the error documentation page, and the refused-form page."""

from __future__ import annotations

import hmac
import logging
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import REASON_NO_CSRF_COOKIE
from django.shortcuts import render
from django.views.decorators.http import require_GET

from multimail.errors import REGISTRY
from multimail.metrics import metrics_exposition

logger = logging.getLogger("multimail.api")


def _check(name: str, probe: Any) -> str:
    try:
        probe()
    except Exception:  # any failure of a dependency means "degraded", whatever its type
        logger.warning("health_check_failed dependency=%s", name, exc_info=True)
        return "unavailable"
    return "ok"


def _probe_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _probe_cache() -> None:
    cache.set("health:probe", "1", 5)


def _probe_broker() -> None:
    from multimail.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html", {"base_url": settings.PUBLIC_BASE_URL})


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format, for a scraper holding METRICS_TOKEN (off when it is unset).
    Not an API-key endpoint: the token is the operator's, not a tenant's."""
    token = settings.METRICS_TOKEN
    sent = request.headers.get("Authorization", "")
    if not token:
        return HttpResponse(
            "Metrics are off: set METRICS_TOKEN.\n", status=404, content_type="text/plain"
        )
    if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
        response = HttpResponse(
            "Send Authorization: Bearer <METRICS_TOKEN>.\n", status=401, content_type="text/plain"
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(
        metrics_exposition(), content_type="text/plain; version=0.0.4; charset=utf-8"
    )


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    checks = {"database": _check("database", _probe_database)}
    if settings.REDIS_URL:
        checks["cache"] = _check("cache", _probe_cache)
    if settings.CELERY_BROKER_URL:
        checks["broker"] = _check("broker", _probe_broker)
    healthy = all(value == "ok" for value in checks.values())
    response = JsonResponse(
        {"status": "ok" if healthy else "degraded", "checks": checks},
        status=200 if healthy else 503,
    )
    if not healthy:
        response["Retry-After"] = "5"
    return response


@require_GET
def error_docs(request: HttpRequest) -> HttpResponse:
    codes = sorted(REGISTRY.values(), key=lambda entry: (entry.status, entry.code))
    return render(request, "docs/errors.html", {"codes": codes})


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A console or admin form refused by the CSRF check. Django's own page is styled
    inline, which the Content-Security-Policy blocks; this one uses the console's look."""
    context = {"no_cookie": reason == REASON_NO_CSRF_COOKIE}
    return render(request, "403_csrf.html", context, status=403)
