"""The database cache every process shares when there is no Redis (the embedded default).

Counting must be atomic across processes (rate limits, attempt limits), ``add`` must let
exactly one process win (proof-of-work replay markers, the resend interval), and an
increment must keep the key's expiry (an hour-long attempt window stays an hour).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.cache import caches
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from multimail.cache import counter_add
from tests.conftest import start_and_join

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = 3
COUNTS = 200

# Each process starts (slow: Django's imports), says so, and waits for the go file, so the
# adds and the counting of all of them overlap.
_COUNT = """
import django, os, sys, time
django.setup()
from django.core.cache import cache
from multimail.cache import counter_add
print("ready", flush=True)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.01)
won = cache.add("pow:used:challenge", 1, 300)
for _ in range(int(sys.argv[1])):
    counter_add("rl:attempts", ttl=3600)
print("won" if won else "lost")
"""


def _embedded_env(var_dir: Path) -> dict[str, str]:
    env = {**os.environ, "MULTIMAIL_VAR_DIR": str(var_dir), "PYTHONPATH": str(ROOT)}
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
        env.pop(name, None)
    env["DJANGO_SETTINGS_MODULE"] = "multimail.settings"
    return env


def test_processes_share_one_atomic_count_one_add_winner_and_a_purge(tmp_path: Path) -> None:
    env = _embedded_env(tmp_path)
    subprocess.run(
        [sys.executable, "manage.py", "createcachetable", "--database", "cache"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    go = tmp_path / "go"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _COUNT, str(COUNTS), str(go)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    for worker in workers:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "ready"
    go.touch()
    outcomes = sorted(worker.communicate(timeout=120)[0].strip() for worker in workers)
    assert all(worker.returncode == 0 for worker in workers)
    assert outcomes == ["lost"] * (PROCESSES - 1) + ["won"]
    with sqlite3.connect(tmp_path / "db-cache.sqlite3") as db:
        expires = db.execute(
            "SELECT expires FROM multimail_cache WHERE cache_key LIKE '%rl:attempts'"
        ).fetchone()[0]
    remaining = datetime.fromisoformat(expires).replace(tzinfo=UTC) - datetime.now(UTC)
    assert 3000 < remaining.total_seconds() <= 3600  # the increments kept the hour
    # A timeout of 0 stores an entry already expired, as a past window's counter is: the
    # purge removes it and nothing live.
    check = (
        "import django; django.setup()\n"
        "from django.core.cache import cache\n"
        "from multimail.cache import expired_cache_entries_purge\n"
        "cache.set('old', 1, 0)\n"
        "print(cache.get('rl:attempts'), expired_cache_entries_purge(), cache.get('rl:attempts'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", check], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    total = str(PROCESSES * COUNTS)
    assert result.stdout.split() == [total, "1", total]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
def test_on_postgresql_concurrent_increments_lose_nothing() -> None:
    """Without Redis on PostgreSQL the cache is a table of the main database."""
    database_cache = {
        "default": {
            "BACKEND": "multimail.cache.DatabaseCache",
            "LOCATION": "test_multimail_cache",
            "OPTIONS": {"MAX_ENTRIES": 1_000_000},
        }
    }
    with override_settings(CACHES=database_cache):
        call_command("createcachetable")
        try:
            counter_add("shared", ttl=60)
            barrier = threading.Barrier(8)

            def count() -> None:
                barrier.wait()
                try:
                    for _ in range(10):
                        counter_add("shared", ttl=60)
                finally:
                    connection.close()

            start_and_join([threading.Thread(target=count) for _ in range(8)], timeout=60)
            assert caches["default"].get("shared") == 81
            assert caches["default"].decr("shared", 80) == 1
        finally:
            with connection.cursor() as cursor:
                cursor.execute("DROP TABLE test_multimail_cache")
