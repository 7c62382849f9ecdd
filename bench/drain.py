#!/usr/bin/env python3
"""The outbound drain: how fast two worker processes hand accepted mail to an SMTP relay.

    .venv/bin/python bench/drain.py [--emails 1000] [--rate 50 --seconds 20] [--root DIR]

Against PostgreSQL (DATABASE_URL, default mm_bench, migrated first) and Redis
(CELERY_BROKER_URL, default REDIS_URL's db 13), with a local SMTP sink (aiosmtpd). Sends
are accepted in this process through the send service, as the API does, so the figures
are the workers' alone. Two measurements:

* backlog: ``--emails`` sends are accepted while no worker runs, then ``celery worker
  --concurrency 2`` starts. Emails/s from the worker's ready to the last hand-off, the time
  to the first hand-off (a backlog of scans must not hold back delivery), and CPU per
  email: user+system time of the worker processes (from /proc), less than wall time
  figures on a shared machine.
* offered: with the workers running, sends are accepted at ``--rate`` per second for
  ``--seconds``; p50 and p99 of accept (the email's received_at) to hand-off at the sink.

``--root`` runs the workers from another checkout of the project (its own code, the same
database and broker), for a before/after pair measured back to back on the same machine.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from run import DEFAULT_DATABASE_URL, ROOT, ensure_database, manage
from scenarios import _django, _done_with_db, _key, _Sink, _tenant, broker_url

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _tree_cpu_seconds(pid: int) -> float:
    """User+system CPU of a process and its children (the prefork pool), from /proc."""
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


class Workers:
    """``celery worker --concurrency 2`` from ``root``, relaying to the sink."""

    def __init__(self, root: Path, sink_port: int, log: Path) -> None:
        self.log = log
        log.write_bytes(b"")
        self.process = subprocess.Popen(  # noqa: S603 (fixed argv, no shell)
            [
                str(ROOT / ".venv" / "bin" / "python"), "-m", "celery", "-A", "multimail",
                "worker", "--concurrency", "2", "--loglevel", "INFO", "--without-gossip",
                "--without-mingle", "--without-heartbeat",
            ],
            cwd=root,
            env={
                **os.environ,
                "LOG_LEVEL": "WARNING",
                "MULTIMAIL_MAIL_BACKEND": "smtp",
                "EMAIL_HOST": "127.0.0.1",
                "EMAIL_PORT": str(sink_port),
            },
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while b"ready." not in log.read_bytes():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"the worker did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.05)
        self.ready_at = time.time()
        self.cpu_at_ready = _tree_cpu_seconds(self.process.pid)

    def cpu_since_ready(self) -> float:
        return _tree_cpu_seconds(self.process.pid) - self.cpu_at_ready

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=60)


def _accept(actor: Any, mailbox_id: str, n: int) -> str:
    from mailboxes.services.outbound.accept import email_accept

    accepted = email_accept(
        actor=actor,
        mailbox_id=mailbox_id,
        to=["lead@example.org"],
        subject=f"Offer {n}",
        markdown=f"Terms for **{n}**, see [the offer](https://example.org/offer/{n}).",
    )
    return accepted.email.message_id


def _wait_for(sink: _Sink, message_ids: set[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sink.lock:
            if message_ids <= sink.arrivals.keys():
                return
        time.sleep(0.1)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def drain_backlog(root: Path, actor: Any, mailbox_id: str, emails: int) -> str:
    """Accept ``emails`` with no worker running, then drain them with two processes."""
    sink = _Sink()
    message_ids = {_accept(actor, mailbox_id, n) for n in range(emails)}
    _done_with_db()
    workers = Workers(root, sink.port, ROOT / "var" / "bench-drain-worker.log")
    try:
        _wait_for(sink, message_ids, timeout=600)
        cpu = workers.cpu_since_ready()
    finally:
        workers.stop()
        sink.stop()
    arrived = [sink.arrivals[mid] for mid in message_ids if mid in sink.arrivals]
    if not arrived:
        return "backlog: nothing reached the sink"
    elapsed = max(arrived) - workers.ready_at
    return (
        f"backlog of {emails}: {len(arrived)} handed off in {elapsed:.1f} s = "
        f"{len(arrived) / elapsed:.0f} emails/s; first hand-off "
        f"{min(arrived) - workers.ready_at:.2f} s after the workers were ready; "
        f"worker CPU {cpu * 1000 / max(len(arrived), 1):.1f} ms per email"
    )


def drain_offered(root: Path, actor: Any, mailbox_id: str, rate: float, seconds: float) -> str:
    """Accept at ``rate`` per second while two worker processes drain."""
    from mailboxes.models import Email

    sink = _Sink()
    workers = Workers(root, sink.port, ROOT / "var" / "bench-drain-worker.log")
    message_ids: set[str] = set()
    try:
        start = time.monotonic()
        n = 0
        while time.monotonic() - start < seconds:
            due = start + n / rate
            if (pause := due - time.monotonic()) > 0:
                time.sleep(pause)
            message_ids.add(_accept(actor, mailbox_id, 10**6 + n))
            n += 1
        _wait_for(sink, message_ids, timeout=300)
        cpu = workers.cpu_since_ready()
    finally:
        workers.stop()
        sink.stop()
    accepted = dict(
        Email.objects.filter(message_id__in=message_ids).values_list("message_id", "received_at")
    )
    _done_with_db()
    latencies = [
        sink.arrivals[mid] - accepted[mid].timestamp() for mid in accepted if mid in sink.arrivals
    ]
    if not latencies:
        return "offered: nothing reached the sink"
    return (
        f"offered {rate:.0f}/s for {seconds:.0f} s: {len(latencies)}/{len(message_ids)} handed "
        f"off; accept to hand-off p50 {statistics.median(latencies) * 1000:.0f} ms, p99 "
        f"{_pct(latencies, 0.99) * 1000:.0f} ms; worker CPU "
        f"{cpu * 1000 / len(latencies):.1f} ms per email (idle time included)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=1000, help="backlog size (0: skip)")
    parser.add_argument("--rate", type=float, default=50.0, help="offered sends per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="offered for (0: skip)")
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout the workers run")
    args = parser.parse_args()
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ.setdefault("CELERY_BROKER_URL", broker_url())
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "multimail.settings"}
    ensure_database(os.environ["DATABASE_URL"])
    manage(env, "migrate", "--noinput", "-v", "0")
    _django()
    import redis

    from accounts.actors import Actor
    from accounts.models import ApiKey

    redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).flushdb()
    account, mailbox = _tenant(f"bench-drain-{time.strftime('%m%d%H%M%S')}", mode="autonomous")
    _key(account, "send")
    actor = Actor.for_key(ApiKey.objects.filter(account=account).latest("created_at"))
    (ROOT / "var").mkdir(exist_ok=True)
    print(f"workers from {args.root.resolve()}", flush=True)
    if args.emails:
        print(drain_backlog(args.root, actor, mailbox.pk, args.emails), flush=True)
    if args.seconds:
        print(drain_offered(args.root, actor, mailbox.pk, args.rate, args.seconds), flush=True)


if __name__ == "__main__":
    main()
