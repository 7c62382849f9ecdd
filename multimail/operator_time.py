"""Times on the pages people read (the console, the hosted approval page) in the operator's
own time zone.

The browser names its zone (static/console/timezone.js, on console pages, stores
``Intl.DateTimeFormat().resolvedOptions().timeZone`` in a cookie). The cookie is the
client's to write, so it counts only when it is exactly one of the IANA zone names this
server knows; anything else, or no cookie, means UTC. The JSON API never uses it: its
timestamps stay UTC whatever cookie a browser sends.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

TIME_ZONE_COOKIE = "mm_tz"
# The views whose pages a person reads: every console page, and the approval page that
# an operator opens from an email (served under /v1/, beside the API).
_PAGE_URL_NAME_PREFIXES = ("console-", "approve-page")


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    # Read once: the set scans the zone database on disk.
    return frozenset(available_timezones())


def operator_time_zone(request: HttpRequest) -> ZoneInfo | None:
    """The zone the operator's browser named, or None when absent or not a known IANA name."""
    name = request.COOKIES.get(TIME_ZONE_COOKIE, "")
    if name not in _known_zones():
        return None
    return ZoneInfo(name)


class OperatorTimeZoneMiddleware:
    """Renders console and approval pages in the operator's zone; every other view, the
    API above all, keeps the server's UTC."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            return self.get_response(request)
        finally:
            # The active zone is per thread: the next request on this thread starts in UTC.
            timezone.deactivate()

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> None:
        match = request.resolver_match
        if match is None or not (match.url_name or "").startswith(_PAGE_URL_NAME_PREFIXES):
            return
        zone = operator_time_zone(request)
        if zone is not None:
            timezone.activate(zone)
