"""Refuse requests from OFAC-sanctioned regions (451 region_blocked).

The region comes from a header set by a TRUSTED proxy in front of the server (Cloudflare's
CF-IPCountry, a load balancer's geo header): REGION_HEADER names it, and when it is unset the
check is off (a client could forge the header if nothing in front overwrites it). Regions
inside a country (Crimea UA-43, Donetsk UA-14, Luhansk UA-09) need a subdivision header,
REGION_SUBDIVISION_HEADER, whose value may be "43" or "UA-43".
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from multimail.errors import ApiError
from multimail.exceptions import error_response, is_api_path

Handler = Callable[[HttpRequest], HttpResponse]

# Load balancers' health checks must keep working whatever region they come from.
_EXEMPT_PATHS = ("/health",)


def request_regions(request: HttpRequest) -> set[str]:
    country = request.headers.get(settings.REGION_HEADER, "").strip().upper()
    regions = {country} if country else set()
    subdivision_header = getattr(settings, "REGION_SUBDIVISION_HEADER", "")
    subdivision = (
        request.headers.get(subdivision_header, "").strip().upper() if subdivision_header else ""
    )
    if subdivision:
        regions.add(subdivision if "-" in subdivision else f"{country}-{subdivision}")
    return regions


def region_block_error(request: HttpRequest) -> ApiError | None:
    """The refusal for a request from a blocked region; None when the check is off or the
    region is served. Also asked by the paths served beside Django (the event stream)."""
    if not settings.REGION_HEADER:
        return None
    blocked = {region.strip().upper() for region in settings.BLOCKED_REGIONS}
    if not request_regions(request) & blocked:
        return None
    return ApiError(
        "region_blocked",
        "MultiMail is not available in your region: it is under OFAC sanctions "
        "and US export regulations forbid the service there.",
    )


class RegionBlockMiddleware:
    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path in _EXEMPT_PATHS:
            return self.get_response(request)
        refusal = region_block_error(request)
        if refusal is None:
            return self.get_response(request)
        if is_api_path(request):
            return error_response(request, refusal)
        return HttpResponse(
            render_to_string("public/region_blocked.html", request=request), status=451
        )
