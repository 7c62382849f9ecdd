#!/usr/bin/env python3
"""Server time of the console's pending queue with 10,000 held emails.

Builds a scratch database from the models (PostgreSQL at DATABASE_URL, default
mm_bench_console; the database is created as test_<name> and dropped at the end), holds
N emails across a few mailboxes, signs an operator in, and times the first page of
``/console/`` in-process (no network): the median of several renders after one warm-up,
plus the poll that answers 204 when nothing changed. Target: first page < 100 ms.

    .venv/bin/python bench/console_queue.py [--emails 10000] [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "multimail.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@localhost:5432/mm_bench_console")

TARGET_MS = 100.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    # Tables straight from the models: the bench does not depend on migration files.
    settings.DATABASES["default"].setdefault("TEST", {})["MIGRATE"] = False
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        return run(args.emails, args.runs)
    finally:
        connection.creation.destroy_test_db(settings.DATABASES["default"]["NAME"], verbosity=0)


def run(count: int, runs: int) -> int:
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.utils import timezone

    from accounts.models import Account, AccountState, Operator
    from accounts.sign_in import SESSION_ACCOUNT_KEY
    from mailboxes.models import Direction, Email, EmailStatus, Mailbox
    from multimail.ids import new_id

    account = Account.objects.create(
        name="Bench",
        slug="bench",
        oversight_email="ops@bench.example",
        state=AccountState.ACTIVE,
        activated_at=timezone.now(),
    )
    user = get_user_model().objects.create_user(username="ops@bench.example")
    Operator.objects.create(account=account, user=user, email="ops@bench.example")
    mailboxes = [
        Mailbox.objects.create(
            account=account,
            address=f"agent{i}@bench.multimail.localhost",
            oversight_mode="gated_all",
        )
        for i in range(5)
    ]
    body = "<p>Hello,</p><p>" + "Here are the numbers you asked for. " * 20 + "</p>"
    started = time.perf_counter()
    batch = []
    for index in range(count):
        outbound = index % 2 == 0
        mailbox = mailboxes[index % len(mailboxes)]
        batch.append(
            Email(
                account=account,
                mailbox=mailbox,
                direction=Direction.OUTBOUND if outbound else Direction.INBOUND,
                status=EmailStatus.PENDING_SEND_APPROVAL
                if outbound
                else EmailStatus.PENDING_INBOUND_APPROVAL,
                from_address=mailbox.address if outbound else f"sender{index}@outside.example",
                to=[f"client{index}@outside.example"] if outbound else [mailbox.address],
                subject=f"Held email {index}",
                markdown="Hello",
                html=body,
                text="Hello",
                thread_id=new_id(),
                # Inbound mail is stored once per Message-ID and mailbox.
                message_id="" if outbound else f"<held-{index}@outside.example>",
            )
        )
        if len(batch) == 1000:
            Email.objects.bulk_create(batch)
            batch = []
    Email.objects.bulk_create(batch)
    from django.db import connection

    with connection.cursor() as cursor:
        # What autovacuum does after a bulk load: give the planner real statistics.
        cursor.execute("ANALYZE")
    print(f"held {count} emails in {time.perf_counter() - started:.1f} s")

    client = Client()
    client.force_login(user)
    session = client.session
    session[SESSION_ACCOUNT_KEY] = account.pk
    session.save()

    def timed(path: str, **headers: str) -> tuple[float, int, bytes]:
        begin = time.perf_counter()
        response = client.get(path, headers=headers)
        return (time.perf_counter() - begin) * 1000, response.status_code, response.content

    _, status, content = timed("/console/")  # warm-up: imports, template compilation
    assert status == 200, status
    version = content.decode().split("?v=")[1].split('"')[0]
    page_ms = [timed("/console/")[0] for _ in range(runs)]
    poll_ms = [timed(f"/console/?v={version}", HX_Request="true")[0] for _ in range(runs)]
    if os.environ.get("BENCH_DEBUG_QUERIES"):
        import cProfile
        import pstats

        profile = cProfile.Profile()
        profile.enable()
        timed("/console/")
        profile.disable()
        pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            timed("/console/")
        for query in queries.captured_queries:
            print(query["time"], query["sql"][:300])
    first_page = statistics.median(page_ms)
    print(f"first page (20 of {count}): median {first_page:.1f} ms, max {max(page_ms):.1f} ms")
    print(f"poll, nothing changed (204): median {statistics.median(poll_ms):.1f} ms")
    verdict = "OK" if first_page < TARGET_MS else "SLOW"
    print(f"target < {TARGET_MS:.0f} ms: {verdict}")
    return 0 if first_page < TARGET_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
