"""Audit metadata as sentences an operator reads, not Python reprs.

Services record metadata as JSON in a few shapes: ``{"changes": {field: [old, new]}}``,
``{"from": a, "to": b}``, ``{"before": {...}, "after": {...}}``, or plain fields. Each is
shown as lines such as ``oversight_mode: gated_send → autonomous``; the console page and
the CSV export use the same lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# A value longer than this (an edited email body) is cut: the line is a summary.
MAX_VALUE_CHARS = 120
ARROW = "→"


def readable_value(value: Any) -> str:
    """One JSON value as text: no quotes, brackets or ``None``."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        text = ", ".join(readable_value(item) for item in value) if value else "none"
    elif isinstance(value, Mapping):
        text = "; ".join(f"{key}: {readable_value(item)}" for key, item in value.items())
        text = text or "none"
    else:
        text = str(value)
    text = " ".join(text.split())
    if len(text) > MAX_VALUE_CHARS:
        return text[: MAX_VALUE_CHARS - 1] + "…"
    return text


def _change(old: Any, new: Any) -> str:
    return f"{readable_value(old)} {ARROW} {readable_value(new)}"


def audit_details(metadata: Any) -> list[str]:
    """The lines that describe one entry's metadata (none when it has none)."""
    if metadata in (None, {}, [], ""):
        return []
    if not isinstance(metadata, Mapping):
        return [readable_value(metadata)]
    lines: list[str] = []
    rest = dict(metadata)
    changes = rest.pop("changes", None)
    if isinstance(changes, Mapping):
        for field, pair in changes.items():
            if isinstance(pair, list | tuple) and len(pair) == 2:
                lines.append(f"{field}: {_change(*pair)}")
            else:
                lines.append(f"{field}: {readable_value(pair)}")
    elif changes is not None:
        lines.append(f"changes: {readable_value(changes)}")
    if "from" in rest and "to" in rest:
        lines.append(_change(rest.pop("from"), rest.pop("to")))
    before, after = rest.get("before"), rest.get("after")
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        del rest["before"], rest["after"]
        for field in dict.fromkeys([*before, *after]):
            lines.append(f"{field}: {_change(before.get(field), after.get(field))}")
    lines.extend(f"{key}: {readable_value(value)}" for key, value in rest.items())
    return lines
