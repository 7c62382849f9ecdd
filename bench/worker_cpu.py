#!/usr/bin/env python3
"""CPU per email of the outbound worker's path, in-process: what one scan-and-deliver task
costs the worker, without Celery's own bookkeeping or another process on the core.

    .venv/bin/python bench/worker_cpu.py [--emails 300] [--profile]

Accepts ``--emails`` sends into an autonomous mailbox of the bench database (with the
broker set, so nothing runs at accept), then runs, for each email, what the
process_email task runs in a worker: ``email_process(deliver_here=True)`` and
``email_deliver_claimed``, handing the message over SMTP to a sink in another process (so the
sink's CPU is not counted). Prints CPU and wall ms per email and the SQL statements of
one email; ``--profile`` adds a cProfile of the batch, by cumulative time.

The drain row of ``make bench`` measures the same path through Celery, two processes and
the broker; this figure moves far less on a shared host, and a profile of it names the
costs.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import DEFAULT_DATABASE_URL, PYTHON, ROOT, free_port


def _sink(port: int) -> subprocess.Popen[bytes]:
    """aiosmtpd's own sink handler, in its own process."""
    process = subprocess.Popen(  # noqa: S603 (fixed argv, no shell)
        [PYTHON, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink", "-l", f"127.0.0.1:{port}"],
        cwd=ROOT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("the SMTP sink did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=300)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the batch")
    args = parser.parse_args()
    port = free_port()
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ.update(
        LOG_LEVEL="WARNING",
        MULTIMAIL_MAIL_BACKEND="smtp",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(port),
    )
    import scenarios  # sets the mail and broker environment before Django reads it

    os.environ.setdefault("CELERY_BROKER_URL", scenarios.broker_url())
    scenarios._django()
    from django.db import close_old_connections, connection
    from django.test.utils import CaptureQueriesContext
    from drain import _accept

    from accounts.actors import Actor
    from accounts.models import ApiKey
    from mailboxes.models import Email, EmailStatus
    from mailboxes.services.outbound import pipeline, provider

    account, mailbox = scenarios._tenant(
        f"bench-worker-{time.strftime('%m%d%H%M%S')}", mode="autonomous"
    )
    scenarios._key(account, "send")
    actor = Actor.for_key(ApiKey.objects.filter(account=account).latest("created_at"))
    ids = [
        Email.objects.get(message_id=_accept(actor, mailbox.pk, n)).pk
        for n in range(args.emails + 2)
    ]
    scenarios._clear_broker()  # the tasks the accepts queued: this process runs them instead
    sink = _sink(port)
    try:

        def one(email_id: str) -> None:
            close_old_connections()  # as the worker's task_prerun does
            claimed = pipeline.email_process(email_id=email_id, deliver_here=True)
            if claimed is not None:
                pipeline.email_deliver_claimed(email=claimed)

        one(ids[0])  # the SMTP connection and the first queries' setup are not counted
        with CaptureQueriesContext(connection) as queries:
            one(ids[1])
        batch = ids[2:]
        profile = None
        if args.profile:
            import cProfile

            profile = cProfile.Profile(time.process_time)
            profile.enable()
        started, started_wall = time.process_time(), time.perf_counter()
        for email_id in batch:
            one(email_id)
        cpu = (time.process_time() - started) * 1000 / len(batch)
        wall = (time.perf_counter() - started_wall) * 1000 / len(batch)
        if profile is not None:
            import pstats

            profile.disable()
            pstats.Stats(profile).sort_stats("cumulative").print_stats(90)
        provider.mailer_close()
    finally:
        sink.terminate()
        sink.wait(timeout=10)
    sent = Email.objects.filter(pk__in=batch, status=EmailStatus.SENT).count()
    statements = [q["sql"] for q in queries.captured_queries]
    print(
        f"worker path, in-process: {cpu:.2f} ms CPU, {wall:.2f} ms wall per email "
        f"({sent}/{len(batch)} sent); {len(statements)} SQL statements per email"
    )
    if os.environ.get("BENCH_SHOW_SQL"):
        for sql in statements:
            print("  ", sql[:160])


if __name__ == "__main__":
    main()
