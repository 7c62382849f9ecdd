"""Time-ordered identifiers (ULID layout: 48-bit milliseconds + 80 random bits, Crockford).

Sorting ids sorts by creation time, so list endpoints page by id alone. Within one
millisecond a process increments the random part instead of drawing a new one (the ULID
spec's monotonic mode), so ids made one after the other by a process sort in order.
"""

from __future__ import annotations

import secrets
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_RANDOM_BITS = 80
# Up to this far back a clock step keeps ids in order; past it (a clock reset, a test that
# moved time) ids follow the clock again, so they keep sorting with other processes' ids.
_MAX_BACKSTEP_MS = 1000
_lock = threading.Lock()
_last_ms = -1
_last_random = 0


def new_id() -> str:
    global _last_ms, _last_random
    with _lock:
        now_ms = int(time.time() * 1000)
        if _last_ms - _MAX_BACKSTEP_MS <= now_ms <= _last_ms and _last_random + 1 < (
            1 << _RANDOM_BITS
        ):
            now_ms = _last_ms  # same millisecond, or the clock stepped back a little
            _last_random += 1
        else:
            _last_random = secrets.randbits(_RANDOM_BITS - 1)  # headroom for increments
        _last_ms = now_ms
        value = (now_ms << _RANDOM_BITS) | _last_random
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))
