"""Contact moved from accounts to mailboxes by model state only: a database migrated
before the move keeps its contacts, on PostgreSQL and on the embedded SQLite default."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

ROOT = Path(__file__).resolve().parents[2]
BEFORE_THE_MOVE = [("accounts", "0001_initial"), ("mailboxes", "0004_inbound_message_once")]


def contacts_survive_the_move() -> None:
    """From a fully migrated database: step back to before the move, store a contact the
    old way, migrate forward, and read it the new way."""
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE_THE_MOVE)
    try:
        old = executor.loader.project_state(BEFORE_THE_MOVE).apps
        account = old.get_model("accounts", "Account").objects.create(
            name="Moved", slug="moved", oversight_email="ops@moved.example"
        )
        old.get_model("accounts", "Contact").objects.create(
            account_id=account.pk, name="Ada", email="ada@example.org", tags=["vip"]
        )
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

    from django.contrib.contenttypes.models import ContentType

    from mailboxes.models import Contact

    contact = Contact.objects.get(email="ada@example.org")
    assert (contact.name, contact.tags, contact.account.slug) == ("Ada", ["vip"], "moved")
    assert list(contact.account.contacts.all()) == [contact]
    with connection.cursor() as cursor:
        indexes = connection.introspection.get_constraints(cursor, "accounts_contact")
    assert "accounts_co_account_926573_idx" in indexes
    # Permissions granted on contacts follow the model: its content type moved with it.
    ContentType.objects.clear_cache()
    assert ContentType.objects.get_for_model(Contact).app_label == "mailboxes"
    assert not ContentType.objects.filter(app_label="accounts", model="contact").exists()


@pytest.mark.django_db(transaction=True)
def test_contacts_survive_the_move_on_postgresql() -> None:
    assert connection.vendor == "postgresql"
    contacts_survive_the_move()


def test_contacts_survive_the_move_on_sqlite(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    env.pop("REDIS_URL", None)
    env["DJANGO_SETTINGS_MODULE"] = "multimail.settings"
    script = (
        "import django; django.setup()\n"
        "from django.core.management import call_command\n"
        "from django.db import connection\n"
        "assert connection.vendor == 'sqlite'\n"
        "call_command('migrate', verbosity=0)\n"
        "from tests.core.test_contact_migration import contacts_survive_the_move\n"
        "contacts_survive_the_move()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
