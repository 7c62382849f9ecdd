"""Epoch milliseconds: the wire format of MultiMail's numeric timestamps (``created_at`` of
mailboxes and contacts, usage windows, session expiry)."""

from __future__ import annotations

from datetime import UTC, datetime


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def from_epoch_ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=UTC)
