"""CPU per request of the mail-path scenarios, in-process: the steadier figure on a shared
host, where wall-clock throughput moves with whatever else runs.

Run after ``bench/run.py`` (it reuses the data that run left in the bench database):

    .venv/bin/python bench/scenarios_cpu.py [--requests 200]

Each scenario's request goes through Django's full stack (middleware, DRF, the services)
with the test client; the figure is ``time.process_time`` per request of this process
(best of 3), so the database server's own CPU is not in it. Tasks are queued, not run. The
wall-clock figure next to it (best of 3 too) includes the database's work: it is the one
that shows a statement whose cost grows with the data.

The last two rows send from a fresh account and from one that has already sent
``--sent-before`` emails this month (bulk-inserted once, reused by later runs), one batch of
each in turn, and the line under the table gives their ratio: a send must cost the same in
month 12 as on day 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import (
    DEFAULT_DATABASE_URL,
    DEFAULT_REDIS_URL,
    PHASE_STARTS,
    Context,
    Scenario,
    account_get,
    fill,
)

SEND_LABEL = "POST send (accept+queue)"
FRESH_LABEL = "POST send, fresh account"
GROWN_LABEL = "POST send, {sent:,} sent"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--sent-before", type=int, default=100_000)
    parser.add_argument(
        "--only", action="append", default=[], help="run the scenarios whose label has this text"
    )
    parser.add_argument(
        "--profile", action="store_true", help="print each scenario's cProfile (one more batch)"
    )
    args = parser.parse_args()
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ.setdefault("REDIS_URL", DEFAULT_REDIS_URL)
    os.environ["MULTIMAIL_BENCH"] = "1"
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["API_RATE_LIMIT_READ_PER_MINUTE"] = str(10**9)
    os.environ["API_RATE_LIMIT_SEND_PER_MINUTE"] = str(10**9)
    import scenarios  # sets the broker and webhook environment before Django reads it

    wanted = {
        SEND_LABEL,
        "POST postmark-inbound",
        "GET emails, first page",
        "GET emails, cursor 900k",
        "GET one email",
        "GET oversight/pending 10k",
        "POST oversight/decide",
    }
    chosen = [
        s
        for s in [Scenario("GET /v1/account", account_get), *scenarios.register()]
        if (s.label in wanted or s.label == "GET /v1/account")
        and (not args.only or any(text in s.label for text in args.only))
    ]
    scenarios._django()
    from django.test import Client

    from accounts.services import api_key_create

    # The send scenario's own tenant: a fresh warmed-up one.
    account, mailbox = scenarios._tenant(
        f"bench-cpu-{time.strftime('%m%d%H%M%S')}", mode="gated_send"
    )
    ctx = Context(
        base_url="",
        api_key=api_key_create(account=account, name="cpu", scopes=["send", "read"])[1],
        account_id=account.pk,
        slug=account.slug,
        mailbox_id=mailbox.pk,
        mailbox_address=mailbox.address,
    )
    client = Client()
    client.get("/bench/plain")
    rows = [("plain view (1 INSERT)", _measure(client, "GET", "/bench/plain", {}, None, args))]
    if not args.only or any(text in FRESH_LABEL for text in args.only):
        rows += _grown_account_rows(scenarios, client, args)
    for scenario in chosen:
        if scenario.prepare is not None:
            scenario.prepare(ctx)
        target = scenario.build(ctx)
        headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in target.headers.items()}
        rows.append(
            (
                scenario.label,
                _measure(client, target.method, target.path, headers, target.body, args),
            )
        )
    if args.profile:
        return
    floor = rows[0][1][0]
    print(f"\nCPU per request in-process (best of 3 x {args.requests}):\n")
    print(f"{'scenario':<28} {'CPU ms':>8} {'x plain':>8} {'wall ms':>8} {'queries':>8}")
    for label, (cpu, wall, queries) in rows:
        print(f"{label:<28} {cpu:>8.2f} {cpu / floor:>8.1f} {wall:>8.2f} {queries:>8}")
    figures = dict(rows)
    grown = GROWN_LABEL.format(sent=args.sent_before)
    if FRESH_LABEL in figures and grown in figures:
        (fresh_cpu, fresh_wall, _), (grown_cpu, grown_wall, _) = (
            figures[FRESH_LABEL],
            figures[grown],
        )
        print(
            f"\nsend after {args.sent_before:,} this month / fresh account: CPU "
            f"{grown_cpu / fresh_cpu:.2f}x, wall {grown_wall / fresh_wall:.2f}x "
            "(target: within 10%)"
        )


def _grown_account_rows(
    scenarios: Any, client: object, args: argparse.Namespace
) -> list[tuple[str, tuple[float, float, int]]]:
    """The send of a fresh account and of one with ``--sent-before`` sends this month,
    measured in alternating batches (best of each), so both see the same machine."""
    import dataclasses
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import Account
    from accounts.services import api_key_create
    from mailboxes import quotas
    from mailboxes.models import Email

    # The largest plan's quota is 100,000 a month: both accounts get room for ten times the
    # month's sends, so the grown one is measured sending, not being refused.
    plan_limits = quotas.limits_for

    def roomy(plan: str) -> Any:
        return dataclasses.replace(plan_limits(plan), monthly_email_quota=10 * args.sent_before)

    quotas.limits_for = roomy  # type: ignore[assignment]
    stamp = time.strftime("%m%d%H%M%S")
    fresh_account, fresh_mailbox = scenarios._tenant(f"bench-fresh-{stamp}", mode="autonomous")
    grown_account, grown_mailbox = scenarios._tenant("bench-grown", mode="autonomous")
    # Created 40 days ago: its current month started about ten days ago, so the bulk sends
    # of the last day or so all count against it.
    Account.objects.filter(pk=grown_account.pk).update(
        created_at=timezone.now() - timedelta(days=40)
    )
    have = Email.objects.filter(mailbox=grown_mailbox).count()
    if have < args.sent_before:
        print(f"  generating {args.sent_before - have:,} sent emails ...", flush=True)
        scenarios._bulk_insert(
            mailbox=grown_mailbox,
            first=have + 1,
            last=args.sent_before,
            id_prefix="00GROWN",
            direction="outbound",
            status="sent",
        )
    pair = []
    for account, mailbox in ((fresh_account, fresh_mailbox), (grown_account, grown_mailbox)):
        key = api_key_create(account=account, name="cpu", scopes=["send"])[1]
        ctx = Context("", key, account.pk, account.slug, mailbox.pk, mailbox.address)
        target = scenarios.send_target(ctx)
        headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in target.headers.items()}
        pair.append((target.method, target.path, headers, target.body))
    best: list[tuple[float, float, int]] = [(float("inf"), float("inf"), 0)] * 2
    batch = argparse.Namespace(**{**vars(args), "profile": False})
    for _ in range(3):
        for index, request in enumerate(pair):
            cpu, wall, queries = _measure(client, *request, batch, rounds=1)
            best[index] = (min(best[index][0], cpu), min(best[index][1], wall), queries)
    return [
        (FRESH_LABEL, best[0]),
        (GROWN_LABEL.format(sent=args.sent_before), best[1]),
    ]


# Request numbers from the warm-up range: the decide pool of a fresh prepare covers them.
_counter = PHASE_STARTS["warmup"]


def _batch(
    client: object,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes | None,
    requests: int,
) -> None:
    """``requests`` requests, each with the next request number; any error stops the run."""
    global _counter
    for _ in range(requests):
        _counter += 1
        response = client.generic(  # type: ignore[attr-defined]
            method, path, fill(body, _counter) or b"", content_type="application/json", **headers
        )
        if response.status_code >= 400:
            raise SystemExit(f"{method} {path}: {response.status_code} {response.content[:200]!r}")


def _measure(
    client: object,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes | None,
    args: argparse.Namespace,
    *,
    rounds: int = 3,
) -> tuple[float, float, int]:
    """(best CPU ms per request, best wall ms per request, SQL queries of one more
    request)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    global _counter
    best = best_wall = float("inf")
    for _ in range(rounds):
        started, started_wall = time.process_time(), time.perf_counter()
        _batch(client, method, path, headers, body, args.requests)
        best = min(best, (time.process_time() - started) * 1000 / args.requests)
        best_wall = min(best_wall, (time.perf_counter() - started_wall) * 1000 / args.requests)
    _counter += 1
    with CaptureQueriesContext(connection) as queries:
        client.generic(  # type: ignore[attr-defined]
            method, path, fill(body, _counter) or b"", content_type="application/json", **headers
        )
    if args.profile:
        _profile(client, method, path, headers, body, args)
    return best, best_wall, len(queries)


def _profile(
    client: object,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes | None,
    args: argparse.Namespace,
) -> None:
    import cProfile
    import pstats

    profile = cProfile.Profile(time.process_time)
    profile.enable()
    _batch(client, method, path, headers, body, args.requests)
    profile.disable()
    print(f"\n=== {method} {path}")
    stats = pstats.Stats(profile).sort_stats("cumulative")
    stats.print_stats(70)


if __name__ == "__main__":
    main()
