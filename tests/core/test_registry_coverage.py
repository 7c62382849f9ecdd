"""Every registered error code is documented at /docs/errors and raised somewhere.

A code in the registry that nothing raises is a promise the API does not keep; the scan
looks for the quoted code string in the Python sources outside the registry itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client

from multimail.errors import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
AREAS = ("accounts", "mailboxes", "oversight", "billing", "multimail")


def _sources() -> str:
    texts = []
    for area in AREAS:
        for path in (ROOT / area).rglob("*.py"):
            if "migrations" in path.parts or path == ROOT / "multimail" / "errors.py":
                continue
            texts.append(path.read_text(encoding="utf-8"))
    return "\n".join(texts)


@pytest.mark.django_db
def test_every_code_is_documented(client: Client) -> None:
    html = client.get("/docs/errors").content.decode()
    missing = [code for code in REGISTRY if f'id="{code}"' not in html]
    assert missing == []


def test_every_code_is_raised_somewhere() -> None:
    source = _sources()
    missing = [code for code in REGISTRY if f'"{code}"' not in source]
    assert missing == [], f"codes in the registry that no source raises: {missing}"
