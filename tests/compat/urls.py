"""The project's URLs plus a route that raises any catalog error, at /v1 and at the compat
base URL, once from a plain Django view (rendered by the middleware) and once from a DRF
view (rendered by the exception handler)."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from rest_framework.request import Request
from rest_framework.views import APIView

from multimail.errors import ApiError
from multimail.urls import urlpatterns as project_urlpatterns


def _error(body: dict[str, Any]) -> ApiError:
    return ApiError(
        body["code"],
        body.get("message"),
        param=body.get("param"),
        errors=body.get("errors"),
        headers=body.get("headers"),
        **body.get("extra", {}),
    )


@csrf_exempt
def raise_in_django(request: HttpRequest) -> HttpResponse:
    raise _error(json.loads(request.body))


class RaiseInDrf(APIView):
    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []
    throttle_classes: list[Any] = []

    def post(self, request: Request) -> HttpResponse:
        raise _error(dict(request.data))


urlpatterns = [
    *(
        path(f"{prefix}v1/test-raise/{kind}", view)
        for prefix in ("", "compat/multimail/")
        for kind, view in (("django", raise_in_django), ("drf", RaiseInDrf.as_view()))
    ),
    *project_urlpatterns,
]
