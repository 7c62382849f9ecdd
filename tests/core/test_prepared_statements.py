"""PostgreSQL connections bind parameters on the server and prepare what they repeat.

The send, decide and inbound paths run the same few statements on every request; a
prepared statement spares PostgreSQL parsing each one again (and planning it, once its
generic plan is as good). Settings: DATABASE_SERVER_SIDE_BINDING, DATABASE_PREPARE_THRESHOLD.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from accounts.models import Account

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
    reason="prepared statements are PostgreSQL's",
)


def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.django_db
def test_a_statement_run_past_the_threshold_is_prepared_and_keeps_its_results(
    owner: object,
) -> None:
    threshold = settings.DATABASES["default"]["OPTIONS"]["prepare_threshold"]
    lookups = [
        list(Account.objects.filter(slug=slug).values_list("slug", flat=True))
        for slug in ["acme", "globex", "acme", "nobody", "acme", "acme", "acme", "globex"]
    ]
    assert threshold == 5
    # Each slug binds as a parameter: one statement text, prepared after its fifth run,
    # and the answers after that are the same as before it.
    assert lookups == [["acme"], [], ["acme"], [], ["acme"], ["acme"], ["acme"], []]
    assert any('FROM "accounts_account"' in sql and "$1" in sql for sql in _prepared_statements())


def _database_options(**environment: str) -> dict:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "multimail.settings", **environment}
    code = (
        "import json; from django.conf import settings; "
        "print(json.dumps(settings.DATABASES['default'].get('OPTIONS', {})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)


def test_both_can_be_turned_off_for_a_pooler_that_cannot_keep_prepared_statements() -> None:
    assert _database_options(DATABASE_PREPARE_THRESHOLD="off")["prepare_threshold"] is None
    assert "server_side_binding" not in _database_options(DATABASE_SERVER_SIDE_BINDING="0")
