"""CPU per request of the mail-path scenarios, in-process: the steadier figure on a shared
host, where wall-clock throughput moves with whatever else runs.

run.py runs it once the load is over and puts its figures in the table; alone, after a
run (it reuses the data that run left in the bench database):

    .venv/bin/python bench/scenarios_cpu.py [--requests 200] [--only LABEL] [--json]

Each scenario's request goes through Django's full stack (middleware, DRF, the services)
with the test client; the figure is ``time.process_time`` per request of this process
(best of 3), so the database server's own CPU is not in it. Tasks are queued, not run.

Two more rows send from a fresh account and from one that has already sent
``--sent-before`` emails this month (bulk-inserted once, reused by later runs), one batch of
each in turn; the line under the table gives their ratio, CPU and wall clock (the wall
clock includes the database's work, so it shows a statement whose cost grows with the
data): a send must cost the same in month 12 as on day 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import (
    BASELINE,
    DEFAULT_DATABASE_URL,
    DEFAULT_REDIS_URL,
    PHASE_STARTS,
    SCENARIOS,
    Context,
    Scenario,
    Target,
    fill,
    plain_view,
)
from table import peer_label

SEND_LABEL = "POST send (accept+queue)"
FRESH_LABEL = "POST send, fresh account"
GROWN_LABEL = "POST send, {sent:,} sent this month"

# Scenarios measured only here (no load run): appended to the request scenarios of run.py
# and scenarios.register() that have ``cpu`` set.
CPU_ONLY: list[Scenario] = []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="LABEL",
        help="measure only the scenario of this exact label (repeatable)",
    )
    parser.add_argument("--json", action="store_true", help="print {label: {ms, queries}}")
    parser.add_argument("--sent-before", type=int, default=100_000)
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

    every = [s for s in [*SCENARIOS, *scenarios.register(), *CPU_ONLY] if s.cpu]
    chosen = [s for s in every if s.label != BASELINE and (not args.only or s.label in args.only)]
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
    figures = {BASELINE: _measure(client, plain_view(ctx), args)}
    grown_label = GROWN_LABEL.format(sent=args.sent_before)
    # Beside the send scenario (make bench selects scenarios with --only), or alone.
    if not args.only or {FRESH_LABEL, grown_label, SEND_LABEL} & set(args.only):
        fresh, grown = _fresh_and_grown_sends(scenarios, client, args)
        figures[FRESH_LABEL], figures[grown_label] = fresh, grown
    for scenario in chosen:
        if scenario.prepare is not None:
            scenario.prepare(ctx)
        figures[scenario.label] = _measure(client, scenario.build(ctx), args)
        if scenario.peer is not None:
            figures[peer_label(scenario.label)] = _measure(client, scenario.peer(ctx), args)
    if args.json:
        print(
            json.dumps({label: {"ms": m.cpu, "queries": m.queries} for label, m in figures.items()})
        )
        return
    floor = figures[BASELINE].cpu
    print(f"\nCPU per request in-process (best of 3 x {args.requests}):\n")
    print(f"{'scenario':<36} {'CPU ms':>8} {'x plain':>8} {'wall ms':>8} {'queries':>8}")
    for label, m in figures.items():
        print(f"{label:<36} {m.cpu:>8.2f} {m.cpu / floor:>8.1f} {m.wall:>8.2f} {m.queries:>8}")
    if FRESH_LABEL in figures:
        fresh, grown = figures[FRESH_LABEL], figures[grown_label]
        print(
            f"\nsend after {args.sent_before:,} this month / fresh account: CPU "
            f"{grown.cpu / fresh.cpu:.2f}x, wall {grown.wall / fresh.wall:.2f}x "
            "(target: within 10%)"
        )


def _fresh_and_grown_sends(
    scenarios: Any, client: object, args: argparse.Namespace
) -> tuple[Measured, Measured]:
    """The send of a fresh account and of one with ``--sent-before`` sends this month,
    measured in alternating batches (best of each), so both see the same machine."""
    import dataclasses
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import Account
    from accounts.principals import principal_versions_bump
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
    principal_versions_bump([grown_account.pk])
    have = Email.objects.filter(mailbox=grown_mailbox).count()
    if have < args.sent_before:
        print(f"  generating {args.sent_before - have:,} sent emails ...", file=sys.stderr)
        scenarios._bulk_insert(
            mailbox=grown_mailbox,
            first=have + 1,
            last=args.sent_before,
            id_prefix="00GROWN",
            direction="outbound",
            status="sent",
        )
    targets = []
    for account, mailbox in ((fresh_account, fresh_mailbox), (grown_account, grown_mailbox)):
        key = api_key_create(account=account, name="cpu", scopes=["send"])[1]
        ctx = Context("", key, account.pk, account.slug, mailbox.pk, mailbox.address)
        targets.append(scenarios.send_target(ctx))
    best = [Measured(float("inf"), float("inf"), 0)] * 2
    for _ in range(3):
        for index, target in enumerate(targets):
            m = _measure(client, target, args, rounds=1)
            best[index] = Measured(
                min(best[index].cpu, m.cpu), min(best[index].wall, m.wall), m.queries
            )
    return best[0], best[1]


# Request numbers from the warm-up range: the decide pool of a fresh prepare covers them.
_counter = PHASE_STARTS["warmup"]


@dataclass(frozen=True)
class Measured:
    cpu: float  # best CPU ms per request
    wall: float  # best wall-clock ms per request
    queries: int  # SQL queries of one more request


def _batch(client: object, target: Target, requests: int) -> None:
    """``requests`` requests, each with the next request number; any error stops the run."""
    global _counter
    method, path, body = target.method, target.path, target.body
    headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in target.headers.items()}
    for _ in range(requests):
        _counter += 1
        response = client.generic(  # type: ignore[attr-defined]
            method, path, fill(body, _counter) or b"", content_type="application/json", **headers
        )
        if response.status_code >= 400:
            raise SystemExit(f"{method} {path}: {response.status_code} {response.content[:200]!r}")


def _measure(
    client: object, target: Target, args: argparse.Namespace, *, rounds: int = 3
) -> Measured:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    cpu = wall = float("inf")
    for _ in range(rounds):
        started, started_wall = time.process_time(), time.perf_counter()
        _batch(client, target, args.requests)
        cpu = min(cpu, (time.process_time() - started) * 1000 / args.requests)
        wall = min(wall, (time.perf_counter() - started_wall) * 1000 / args.requests)
    with CaptureQueriesContext(connection) as queries:
        _batch(client, target, 1)
    if args.profile:
        _profile(client, target, args)
    return Measured(cpu, wall, len(queries))


def _profile(client: object, target: Target, args: argparse.Namespace) -> None:
    import cProfile
    import pstats

    profile = cProfile.Profile(time.process_time)
    profile.enable()
    _batch(client, target, args.requests)
    profile.disable()
    print(f"\n=== {target.method} {target.path}")
    pstats.Stats(profile).sort_stats("cumulative").print_stats(70)


if __name__ == "__main__":
    main()
