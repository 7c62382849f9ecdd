"""Server-rendered SVG charts: no JavaScript, no inline style (CSP), readable without CSS."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: int


@dataclass(frozen=True, slots=True)
class BarChart:
    title: str
    width: int
    height: int
    bars: list[Bar]
    max_value: int
    baseline: float
    ticks: list[tuple[float, str]]


def bar_chart(
    series: Sequence[tuple[date, int]], *, title: str, width: int = 640, height: int = 200
) -> BarChart:
    """Geometry for one bar per day; the template draws it (each bar has a <title>)."""
    top, bottom, left = 10, 24, 32
    plot_height = height - top - bottom
    max_value = max((value for _, value in series), default=0) or 1
    slot = (width - left) / max(len(series), 1)
    bars = []
    ticks = []
    for index, (day, value) in enumerate(series):
        bar_height = plot_height * value / max_value
        x = left + index * slot
        bars.append(
            Bar(
                x=round(x + slot * 0.1, 1),
                y=round(top + plot_height - bar_height, 1),
                width=round(max(slot * 0.8, 1), 1),
                height=round(bar_height, 1),
                label=day.isoformat(),
                value=value,
            )
        )
        # Label the first day and every 7th, so a 31-day month stays legible on a phone.
        if index % 7 == 0:
            ticks.append((round(x + slot / 2, 1), day.strftime("%m-%d")))
    return BarChart(
        title=title,
        width=width,
        height=height,
        bars=bars,
        max_value=max_value,
        baseline=top + plot_height,
        ticks=ticks,
    )
