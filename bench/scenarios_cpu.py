"""CPU per request of the mail-path scenarios, in-process: the steadier figure on a shared
host, where wall-clock throughput moves with whatever else runs.

run.py runs it once the load is over and puts its figures in the table; alone, after a
run (it reuses the data that run left in the bench database):

    .venv/bin/python bench/scenarios_cpu.py [--requests 200] [--only LABEL] [--json]

Each scenario's request goes through Django's full stack (middleware, DRF, the services)
with the test client; the figure is ``time.process_time`` per request of this process
(best of 3), so the database server's own CPU is not in it. Tasks are queued, not run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

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
    for scenario in chosen:
        if scenario.prepare is not None:
            scenario.prepare(ctx)
        figures[scenario.label] = _measure(client, scenario.build(ctx), args)
        if scenario.peer is not None:
            figures[peer_label(scenario.label)] = _measure(client, scenario.peer(ctx), args)
    if args.json:
        print(json.dumps({label: {"ms": ms, "queries": q} for label, (ms, q) in figures.items()}))
        return
    floor = figures[BASELINE][0]
    print(f"\nCPU per request in-process (best of 3 x {args.requests}):\n")
    print(f"{'scenario':<36} {'CPU ms':>8} {'x plain':>8} {'queries':>8}")
    for label, (cpu, queries) in figures.items():
        print(f"{label:<36} {cpu:>8.2f} {cpu / floor:>8.1f} {queries:>8}")


# Request numbers from the warm-up range: the decide pool of a fresh prepare covers them.
_counter = PHASE_STARTS["warmup"]


def _measure(client: object, target: Target, args: argparse.Namespace) -> tuple[float, int]:
    """(best CPU ms per request, SQL queries of one more request)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    method, path, body = target.method, target.path, target.body
    headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in target.headers.items()}
    global _counter
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for _ in range(args.requests):
            _counter += 1
            data = fill(body, _counter)
            response = client.generic(  # type: ignore[attr-defined]
                method, path, data or b"", content_type="application/json", **headers
            )
            if response.status_code >= 400:
                raise SystemExit(
                    f"{method} {path}: {response.status_code} {response.content[:200]!r}"
                )
        best = min(best, (time.process_time() - started) * 1000 / args.requests)
    _counter += 1
    with CaptureQueriesContext(connection) as queries:
        client.generic(  # type: ignore[attr-defined]
            method, path, fill(body, _counter) or b"", content_type="application/json", **headers
        )
    return best, len(queries)


if __name__ == "__main__":
    main()
