"""The bench's one table: what run.py measured, as Markdown that pastes into bench/README.md.

Kept apart from run.py (no processes, no Django) so that a test can feed it a made-up
result set.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

COLUMNS = (
    "scenario",
    "req/s (min-max)",
    "p50 ms",
    "p99 ms",
    "vs plain (min-max)",
    "CPU ms",
    "server CPU ms",
    "PG CPU ms",
    "queries",
    "peer req/s",
    "peer CPU ms",
    "x peer req/s",
    "x peer CPU",
)


@dataclass
class Window:
    """One measured window of one scenario."""

    rps: float
    p50_ms: float
    p99_ms: float
    errors: int = 0
    lopsided: bool = False
    # CPU per request in the window: the gunicorn workers', PostgreSQL's backends'.
    server_cpu_ms: float = 0.0
    database_cpu_ms: float = 0.0


def window(result: Any) -> Window:
    """A run.Result as a table window."""
    return Window(
        result.requests_per_second,
        result.p50_ms,
        result.p99_ms,
        result.errors,
        result.lopsided,
        result.server_cpu_ms,
        result.database_cpu_ms,
    )


@dataclass
class Measured:
    """A request scenario's rounds, each window after a plain-view window of its own."""

    label: str
    queries: str = "?"
    plain: list[Window] = field(default_factory=list)
    rounds: list[Window] = field(default_factory=list)
    peer_rounds: list[Window] = field(default_factory=list)
    peer_queries: str = ""


@dataclass
class Cpu:
    """CPU per request in-process (best of 3), and the SQL statements of one request."""

    ms: float
    queries: int


@dataclass
class PipelineRow:
    """What the workers did with a load: emails/s and accept-to-hand-off latency."""

    label: str
    emails_per_second: float
    p50_ms: float
    p99_ms: float
    note: str = ""
    # CPU per email of the worker processes, and of PostgreSQL's backends, over the run.
    worker_cpu_ms: float = 0.0
    database_cpu_ms: float = 0.0


PEER = " [peer]"


def peer_label(label: str) -> str:
    """The CPU pass's name for a scenario's stock-DRF peer."""
    return label + PEER


def _spread(values: Sequence[float], fmt: str, unit: str = "") -> str:
    """The median, and the range of the windows beside it: ``250 (200-300)``."""
    if not values:
        return "-"
    middle = format(statistics.median(values), fmt) + unit
    if len(values) == 1:
        return middle
    return f"{middle} ({format(min(values), fmt)}-{format(max(values), fmt)}{unit})"


def _median(values: Sequence[float], fmt: str) -> str:
    return format(statistics.median(values), fmt) if values else "-"


def _flag(windows: Sequence[Window]) -> str:
    return " !" if any(w.lopsided for w in windows) else ""


def _seconds(ms: float) -> str:
    """A pipeline latency: seconds, or milliseconds below one (a drained pipeline's hand-off
    takes tens of ms, which one decimal of a second would show as 0.0 s)."""
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def render(rows: Sequence[Measured | PipelineRow], cpu: dict[str, Cpu], *, baseline: str) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|---" + "|---:" * (len(COLUMNS) - 1) + "|"]
    measured = [row for row in rows if isinstance(row, Measured)]
    plain = [w for row in measured for w in row.plain]
    floor = cpu.get(baseline)
    if plain:
        lines.append(
            _line(
                baseline,
                _spread([w.rps for w in plain], ".0f") + _flag(plain),
                _median([w.p50_ms for w in plain], ".1f"),
                _median([w.p99_ms for w in plain], ".1f"),
                "100%",
                f"{floor.ms:.2f}" if floor else "-",
                _median([w.server_cpu_ms for w in plain], ".2f"),
                _median([w.database_cpu_ms for w in plain], ".2f"),
                "1",
            )
        )
    notes = []
    for row in rows:
        if isinstance(row, PipelineRow):
            lines.append(
                _line(
                    row.label,
                    f"{row.emails_per_second:.0f} emails/s",
                    _seconds(row.p50_ms),
                    _seconds(row.p99_ms),
                    "-",
                    "-",
                    f"{row.worker_cpu_ms:.1f}/email" if row.worker_cpu_ms else "-",
                    f"{row.database_cpu_ms:.1f}/email" if row.database_cpu_ms else "-",
                )
            )
            if row.note:
                notes.append(f"{row.label}: {row.note}")
            continue
        ratios = [w.rps / p.rps for w, p in zip(row.rounds, row.plain, strict=False) if p.rps]
        own, peer = cpu.get(row.label), cpu.get(peer_label(row.label))
        peer_cells: tuple[str, ...] = ()
        if row.peer_rounds:
            versus = [
                w.rps / p.rps for w, p in zip(row.rounds, row.peer_rounds, strict=False) if p.rps
            ]
            peer_cells = (
                _spread([w.rps for w in row.peer_rounds], ".0f") + _flag(row.peer_rounds),
                f"{peer.ms:.2f}" if peer else "-",
                _spread(versus, ".2f"),
                f"{own.ms / peer.ms:.2f}" if own and peer else "-",
            )
        errors = sum(w.errors for w in row.rounds + row.peer_rounds)
        if errors:
            notes.append(f"{row.label}: {errors} failed requests")
        lines.append(
            _line(
                row.label,
                _spread([w.rps for w in row.rounds], ".0f") + _flag(row.rounds),
                _median([w.p50_ms for w in row.rounds], ".1f"),
                _median([w.p99_ms for w in row.rounds], ".1f"),
                _spread([r * 100 for r in ratios], ".0f", "%"),
                f"{own.ms:.2f}" if own else "-",
                _median([w.server_cpu_ms for w in row.rounds], ".2f"),
                _median([w.database_cpu_ms for w in row.rounds], ".2f"),
                row.queries,
                *peer_cells,
            )
        )
    # Scenarios measured in-process only (scenarios_cpu.CPU_ONLY).
    shown = {row.label for row in rows} | {baseline}
    for label, figure in cpu.items():
        if label not in shown and not label.endswith(PEER):
            lines.append(
                _line(label, "-", "-", "-", "-", f"{figure.ms:.2f}", "-", "-", str(figure.queries))
            )
    if any(w.lopsided for row in measured for w in row.plain + row.rounds + row.peer_rounds):
        notes.append(
            "! a window stayed lopsided after retries: one gunicorn worker did under half its "
            "share of the server's CPU (the figure is then closer to one core's than two)"
        )
    return "\n".join([*lines, "", *notes]) if notes else "\n".join(lines)


def _line(*cells: str) -> str:
    padded = list(cells) + ["-"] * (len(COLUMNS) - len(cells))
    return "| " + " | ".join(padded) + " |"
