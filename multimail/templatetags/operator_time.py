"""``{{ value|when }}``: a timestamp in the operator's zone, with UTC on hover.

Renders ``<time datetime="2026-12-01T15:04:00Z" title="2026-12-01 15:04 UTC">2026-12-01
16:04</time>``: the visible text in the zone active for the page
(multimail.operator_time), the machine-readable and hover text always in UTC. The
argument picks what is shown: ``"minutes"`` (the default), ``"seconds"``, ``"date"`` or
``"time"``. None renders as an empty string, so ``|when|default:"never"`` works.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()

_SHOWN = {
    "minutes": "%Y-%m-%d %H:%M",
    "seconds": "%Y-%m-%d %H:%M:%S",
    "date": "%Y-%m-%d",
    "time": "%H:%M",
}


@register.filter(is_safe=True)
def when(value: datetime | date | None, shown: str = "minutes") -> SafeString | str:
    if value is None or value == "":
        return ""
    if not isinstance(value, datetime):
        # A calendar day (a billing period's first day) has no zone to convert.
        return format_html('<time datetime="{}">{}</time>', value.isoformat(), value.isoformat())
    utc = value.astimezone(UTC)
    return format_html(
        '<time datetime="{}" title="{} UTC">{}</time>',
        utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        utc.strftime(_SHOWN["seconds"] if shown == "seconds" else _SHOWN["minutes"]),
        timezone.localtime(value).strftime(_SHOWN[shown]),
    )


@register.simple_tag
def time_zone_name() -> str:
    """The zone the page's times are shown in, for the footer."""
    return str(timezone.get_current_timezone())
