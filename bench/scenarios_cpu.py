"""CPU per request of the mail-path scenarios, in-process: the steadier figure on a shared
host, where wall-clock throughput moves with whatever else runs.

Run after ``bench/run.py`` (it reuses the data that run left in the bench database):

    .venv/bin/python bench/scenarios_cpu.py [--requests 200]

Each scenario's request goes through Django's full stack (middleware, DRF, the services)
with the test client; the figure is ``time.process_time`` per request of this process
(best of 3), so the database server's own CPU is not in it. Tasks are queued, not run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, PHASE_STARTS, Context, fill


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
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
        "POST send (accept+queue)",
        "POST postmark-inbound",
        "GET emails, first page",
        "GET emails, cursor 900k",
        "GET one email",
        "GET oversight/pending 10k",
        "POST oversight/decide",
    }
    chosen = [
        s
        for s in scenarios.register()
        if s.label in wanted and (not args.only or any(text in s.label for text in args.only))
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
    print(f"{'scenario':<28} {'CPU ms':>8} {'x plain':>8} {'queries':>8}")
    for label, (cpu, queries) in rows:
        print(f"{label:<28} {cpu:>8.2f} {cpu / floor:>8.1f} {queries:>8}")


# Request numbers from the warm-up range: the decide pool of a fresh prepare covers them.
_counter = PHASE_STARTS["warmup"]


def _measure(
    client: object,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes | None,
    args: argparse.Namespace,
) -> tuple[float, int]:
    """(best CPU ms per request, SQL queries of one more request)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

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
    if args.profile:
        _profile(client, method, path, headers, body, args)
    return best, len(queries)


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

    global _counter
    profile = cProfile.Profile(time.process_time)
    profile.enable()
    for _ in range(args.requests):
        _counter += 1
        client.generic(  # type: ignore[attr-defined]
            method, path, fill(body, _counter) or b"", content_type="application/json", **headers
        )
    profile.disable()
    print(f"\n=== {method} {path}")
    stats = pstats.Stats(profile).sort_stats("cumulative")
    stats.print_stats(70)


if __name__ == "__main__":
    main()
