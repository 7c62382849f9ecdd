"""The hot id-keyed statements (multimail.statements.hot_cursor) are prepared, and only they.

On PostgreSQL a statement run on ``hot_cursor`` binds its parameters on the server, so
psycopg prepares it once it has run ``prepare_threshold`` times on the connection; what
runs on ``connection.cursor()`` stays bound on the client and is never prepared (the ORM's
searches must keep plans made for their values). Either way the statement is in Django's
query log, which the query-count tests read. That compiled statements answer as the ORM
does, prepared or not, is held by test_compiled_queries and test_compiled_updates.
"""

from __future__ import annotations

from contextlib import nullcontext

import pytest
from django.conf import settings
from django.db import DataError, connection, transaction
from django.db.backends.postgresql.base import ServerBindingCursor
from django.test.utils import CaptureQueriesContext

from mailboxes.models import Mailbox
from multimail.statements import CompiledQuery, hot_cursor
from tests.conftest import Tenant

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="prepared statements are PostgreSQL's",
    ),
]

_MAILBOX = CompiledQuery(
    lambda mailbox_id: Mailbox.objects.filter(pk=mailbox_id), params=("mailbox_id",)
)


def _prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_a_hot_statement_is_prepared_from_its_threshold_run_and_still_logged(
    owner: Tenant,
) -> None:
    threshold = settings.DATABASES["default"]["OPTIONS"]["prepare_threshold"]
    assert threshold is not None
    with CaptureQueriesContext(connection) as queries:
        for run in range(threshold + 2):
            assert _MAILBOX.rows(mailbox_id=owner.mailbox.pk) == [owner.mailbox]
            prepared = [sql for sql in _prepared() if "mailboxes_mailbox" in sql]
            # psycopg prepares on the run after the threshold-th, and keeps it.
            assert len(prepared) == (1 if run >= threshold else 0), run
    assert "$1" in prepared[0]
    compiled_runs = [q for q in queries.captured_queries if "pg_prepared" not in q["sql"]]
    assert len(compiled_runs) == threshold + 2


def test_statements_on_the_default_cursor_are_never_prepared(owner: Tenant) -> None:
    for _ in range(10):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT address FROM mailboxes_mailbox WHERE id = %s", [owner.mailbox.pk]
            )
        list(Mailbox.objects.filter(pk=owner.mailbox.pk))
    assert not [sql for sql in _prepared() if "mailboxes_mailbox" in sql]


def test_a_rollback_drops_the_prepared_statements_and_they_are_prepared_again(
    owner: Tenant,
) -> None:
    """psycopg deallocates every prepared statement of a connection on a rollback (a
    savepoint's included); the statement must still answer, and prepare again."""
    threshold = settings.DATABASES["default"]["OPTIONS"]["prepare_threshold"]
    for _ in range(threshold + 1):
        _MAILBOX.rows(mailbox_id=owner.mailbox.pk)
    assert [sql for sql in _prepared() if "mailboxes_mailbox" in sql]
    with pytest.raises(RuntimeError), transaction.atomic():
        raise RuntimeError  # ROLLBACK TO SAVEPOINT
    assert not [sql for sql in _prepared() if "mailboxes_mailbox" in sql]
    assert _MAILBOX.rows(mailbox_id=owner.mailbox.pk) == [owner.mailbox]
    for _ in range(threshold + 1):
        assert _MAILBOX.rows(mailbox_id=owner.mailbox.pk) == [owner.mailbox]
    assert [sql for sql in _prepared() if "mailboxes_mailbox" in sql]


def test_the_hot_cursor_binds_on_the_server_and_the_default_one_on_the_client() -> None:
    with hot_cursor(connection) as cursor:
        cursor.execute("SELECT %s::int + 1", [41])
        assert cursor.fetchone() == (42,)
        assert isinstance(cursor.cursor, ServerBindingCursor)
    with connection.cursor() as cursor:
        assert not isinstance(cursor.cursor, ServerBindingCursor)


@pytest.mark.parametrize("logged", [True, False])
def test_a_value_postgresql_refuses_fails_as_djangos_data_error_logged_or_not(
    owner: Tenant, logged: bool
) -> None:
    """The query log writes values in before the statement runs; a value it cannot write
    (a NUL in text) must still fail as the statement does unlogged."""
    log = CaptureQueriesContext(connection) if logged else nullcontext()
    with log, pytest.raises(DataError), transaction.atomic():
        _MAILBOX.rows(mailbox_id="nul\x00")
