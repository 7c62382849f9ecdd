"""Growing delays between attempts at something that failed (a webhook, an operator email)."""

from __future__ import annotations

import random
from datetime import timedelta


def backoff_delay(attempts: int, *, base_seconds: int, max_seconds: int) -> timedelta:
    """How long to wait after ``attempts`` failed attempts: ``base_seconds``, then twice,
    four times as long, ..., at most ``max_seconds``. Jitter spreads the retries, so a
    receiver that recovers is not hit by every one of them at once."""
    base = min(base_seconds * 2 ** max(attempts - 1, 0), max_seconds)
    return timedelta(seconds=base * random.uniform(0.8, 1.2))
