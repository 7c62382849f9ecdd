"""Bench mode only (MULTIMAIL_BENCH=1): the product's routes plus a plain comparison view.

The plain view is the floor to compare against: a bare Django function view that runs
one INSERT into a scratch table bench/run.py creates, with no auth, DRF or envelope.
"""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import path

from multimail.urls import urlpatterns as product_urlpatterns

PLAIN_TABLE = "bench_plain_hits"


def plain_insert(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {PLAIN_TABLE} (created_at) VALUES (now())")  # noqa: S608
    return JsonResponse({"ok": True})


urlpatterns = [path("bench/plain", plain_insert), *product_urlpatterns]
