"""Counts authenticated API calls for GET /v1/usage."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from billing.usage import api_call_count, api_call_counted
from multimail.authentication import ApiPrincipal
from multimail.exceptions import is_api_path

logger = logging.getLogger("multimail.billing")


class ApiCallUsageMiddleware:
    """One cheap place for every endpoint: after the view ran, a request that DRF
    authenticated with an API key (``request.user`` is then the ApiPrincipal) counts one
    API call. ``type()`` rather than ``isinstance`` so a console request's lazy user is
    never evaluated (that would cost a session query). When authentication already counted
    the call (in its own round trip, ``billing.usage.api_call_counter``), only the flush
    that may follow the count is left to do here, after the view, as it always was."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = request.__dict__.get("user")
        if is_api_path(request) and type(user) is ApiPrincipal:
            try:
                if user.api_call is None:
                    api_call_count(account=user.account)
                else:
                    api_call_counted(account=user.account, counted=user.api_call)
            except Exception:  # cache backends raise their own errors; counting is best effort
                logger.warning(
                    "api_call_count_failed request_id=%s", getattr(request, "request_id", "")
                )
        return response
