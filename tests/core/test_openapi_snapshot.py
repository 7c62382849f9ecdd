"""The served schema matches the committed copy, so a schema change is always deliberate.

Descriptions are left out of the comparison: they are prose from docstrings and may be
reworded freely. Everything a client generator reads (operations, parameters, request and
response schemas, security) is compared. After a deliberate change, regenerate the copy with
``UPDATE_OPENAPI_SNAPSHOT=1 make test PYTEST_ARGS=tests/core/test_openapi_snapshot.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

SNAPSHOT = Path(__file__).parent / "snapshots" / "openapi.json"


def _without_prose(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: _without_prose(value)
            for key, value in node.items()
            if key not in {"description", "summary"}
        }
    if isinstance(node, list):
        return [_without_prose(item) for item in node]
    return node


@pytest.mark.django_db
def test_served_schema_matches_the_committed_copy(client: Client) -> None:
    served = _without_prose(json.loads(client.get("/v1/openapi.json").content))
    served.pop("info", None)
    if os.environ.get("UPDATE_OPENAPI_SNAPSHOT"):
        SNAPSHOT.write_text(json.dumps(served, indent=1, sort_keys=True) + "\n")
    committed = json.loads(SNAPSHOT.read_text())
    assert sorted(served["paths"]) == sorted(committed["paths"])
    for path, operations in committed["paths"].items():
        assert served["paths"][path] == operations, path
    assert served["components"] == committed["components"]
    assert served == committed
