"""The demo credentials file of `make run`: the raw demo key, kept so every run prints the
same working key (the database keeps only its hash).

The file is shell syntax (``NAME=value`` lines), so a terminal can load it with
``. var/demo.env`` and use ``$MULTIMAIL_API_KEY`` and ``$MULTIMAIL_MAILBOX_ID``.
"""

from __future__ import annotations

import hmac
import os
from pathlib import Path

from accounts.models import Account, ApiKey
from accounts.services import hash_key

_HEADER = (
    "# MultiMail demo credentials, written by `manage.py seed_demo` (make run).\n"
    "# Load them into a shell with: . var/demo.env   Delete this file for a new demo key.\n"
)


def demo_credentials_read(path: Path) -> dict[str, str]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    values = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and not name.startswith("#"):
            values[name.strip()] = value.strip()
    return values


def demo_credentials_write(path: Path, values: dict[str, str]) -> None:
    """Write atomically, readable by the owner only (it holds a live key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(_HEADER + "".join(f"{name}={value}\n" for name, value in values.items()))
    partial.replace(path)


def demo_key_works(*, account: Account, raw_key: str) -> bool:
    """The stored key is still an active key of the demo account."""
    if not raw_key:
        return False
    key_hash = hash_key(raw_key)
    return any(
        hmac.compare_digest(stored, key_hash)
        for stored in ApiKey.objects.filter(account=account, is_active=True).values_list(
            "key_hash", flat=True
        )
    )
