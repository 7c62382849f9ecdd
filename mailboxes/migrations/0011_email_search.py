"""Full-text search of emails (mailboxes.search), on each database's own engine.

PostgreSQL: a stored generated tsvector column with a GIN index; the database computes it
on every insert and update, so nothing in Python keeps it in sync. Adding the column
rewrites the table once (plan the migration on a large install).

SQLite (the embedded default): an FTS5 table over the email table's columns, kept by
triggers. A later migration that makes SQLite remake the email table (Django copies it into
a new one, for most field changes) drops these triggers: such a migration must run
SQLITE_TRIGGERS again afterwards (tests/core/test_embedded_search.py fails until it does).
"""

from __future__ import annotations

from typing import Any

from django.db import migrations, models

# Weights: A subject, B sender, C recipients, D body text and attachment names
# (mailboxes.search restricts from: to B and to: to C). An address is indexed whole and
# with "@" as a space, so a search finds it by its local part and by its domain. Long
# values are cut: a tsvector has a size limit, and an insert must never fail on it.
_RECIPIENTS = """left("to"::text || ' ' || "cc"::text, 20000)"""
_BODY = """left(CASE WHEN "text" <> '' THEN "text" ELSE "markdown" END, 100000)"""
# A file name is one token to the parser ("q3-report.pdf"): indexed whole and in its parts.
_NAMES = """left("attachment_names", 20000)"""
POSTGRES_INSTALL = [
    f"""
    ALTER TABLE mailboxes_email ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple'::regconfig, "subject"), 'A')
        || setweight(
            to_tsvector('simple'::regconfig, left("from_address", 998))
            || to_tsvector('simple'::regconfig, replace(left("from_address", 998), '@', ' ')),
            'B'
        )
        || setweight(
            to_tsvector('simple'::regconfig, {_RECIPIENTS})
            || to_tsvector('simple'::regconfig, replace({_RECIPIENTS}, '@', ' ')),
            'C'
        )
        || setweight(
            to_tsvector('simple'::regconfig, {_BODY})
            || to_tsvector('simple'::regconfig, {_NAMES})
            || to_tsvector('simple'::regconfig, translate({_NAMES}, '._-', '   ')),
            'D'
        )
    ) STORED
    """,
    "CREATE INDEX email_search ON mailboxes_email USING gin (search_vector)",
]
POSTGRES_REMOVE = [
    "DROP INDEX IF EXISTS email_search",
    "ALTER TABLE mailboxes_email DROP COLUMN IF EXISTS search_vector",
]

_FTS_COLUMNS = 'subject, from_address, "to", cc, "text", markdown, attachment_names'
_OLD = 'old.subject, old.from_address, old."to", old.cc, old."text", old.markdown, old.attachment_names'
_NEW = 'new.subject, new.from_address, new."to", new.cc, new."text", new.markdown, new.attachment_names'
SQLITE_TABLE = f"""
    CREATE VIRTUAL TABLE mailboxes_email_fts USING fts5(
        {_FTS_COLUMNS}, content='mailboxes_email', content_rowid='rowid',
        tokenize='unicode61 remove_diacritics 2'
    )
"""
SQLITE_TRIGGERS = [
    f"""
    CREATE TRIGGER mailboxes_email_fts_insert AFTER INSERT ON mailboxes_email BEGIN
        INSERT INTO mailboxes_email_fts(rowid, {_FTS_COLUMNS}) VALUES (new.rowid, {_NEW});
    END
    """,
    f"""
    CREATE TRIGGER mailboxes_email_fts_delete AFTER DELETE ON mailboxes_email BEGIN
        INSERT INTO mailboxes_email_fts(mailboxes_email_fts, rowid, {_FTS_COLUMNS})
        VALUES ('delete', old.rowid, {_OLD});
    END
    """,
    # Only when an indexed column changes: status changes do not touch the index.
    f"""
    CREATE TRIGGER mailboxes_email_fts_update
    AFTER UPDATE OF {_FTS_COLUMNS} ON mailboxes_email BEGIN
        INSERT INTO mailboxes_email_fts(mailboxes_email_fts, rowid, {_FTS_COLUMNS})
        VALUES ('delete', old.rowid, {_OLD});
        INSERT INTO mailboxes_email_fts(rowid, {_FTS_COLUMNS}) VALUES (new.rowid, {_NEW});
    END
    """,
    # Mail stored before this migration (or before the email table was remade).
    "INSERT INTO mailboxes_email_fts(mailboxes_email_fts) VALUES ('rebuild')",
]
SQLITE_INSTALL = [SQLITE_TABLE, *SQLITE_TRIGGERS]
SQLITE_REMOVE = [
    "DROP TRIGGER IF EXISTS mailboxes_email_fts_insert",
    "DROP TRIGGER IF EXISTS mailboxes_email_fts_delete",
    "DROP TRIGGER IF EXISTS mailboxes_email_fts_update",
    "DROP TABLE IF EXISTS mailboxes_email_fts",
]


def _run(statements: dict[str, list[str]]) -> Any:
    def run(apps: Any, schema_editor: Any) -> None:
        for statement in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("mailboxes", "0010_email_hold_reason"),
    ]

    operations = [
        migrations.AddField(
            model_name="email",
            name="attachment_names",
            field=models.TextField(blank=True, default=""),
        ),
        migrations.RunPython(
            _run({"postgresql": POSTGRES_INSTALL, "sqlite": SQLITE_INSTALL}),
            _run({"postgresql": POSTGRES_REMOVE, "sqlite": SQLITE_REMOVE}),
        ),
    ]
