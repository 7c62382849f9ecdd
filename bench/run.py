#!/usr/bin/env python3
"""Throughput and latency of API endpoints against a plain Django view, on loopback.

Starts the service under gunicorn (2 workers x 4 threads, one listening socket per worker
with SO_REUSEPORT so the kernel spreads connections over them) in bench mode on a free
127.0.0.1 port, against PostgreSQL (DATABASE_URL, default mm_bench) and Redis (REDIS_URL),
creates its own account, then drives each scenario from a separate process (wrk when
installed, else the built-in threaded generator) in alternating rounds with the plain view
(plain, scenario, peer, plain, scenario, peer ...), measures the CPU per request
in-process (scenarios_cpu.py) and prints one table (bench/table.py).

Add a scenario: write a function ``(Context) -> Target`` and append a ``Scenario`` to
SCENARIOS here or to ``scenarios.register()``. ``Context`` carries the account, key and
mailbox the script created; ``prepare`` hooks (optional) create more data first; ``peer``
names the stock-DRF version of the same request (bench/peer.py); ``report`` turns a
pipeline scenario's aftermath into a row (``PipelineRow``).
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import table

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
DEFAULT_DATABASE_URL = "postgres://postgres@localhost:5432/mm_bench"
DEFAULT_REDIS_URL = "redis://localhost:6379/14"
PLAIN_TABLE = "bench_plain_hits"


# --- Scenarios ------------------------------------------------------------------------


@dataclass
class Context:
    base_url: str
    api_key: str
    account_id: str
    slug: str
    mailbox_id: str
    mailbox_address: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


@dataclass
class Target:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    expect_status: int = 200
    # Other (path, headers) pairs the load rotates through with ``path``/``headers``, one
    # per request: the same request for several tenants at once.
    rotate: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def variants(self) -> list[tuple[str, dict[str, str]]]:
        return [(self.path, self.headers), *self.rotate]


@dataclass
class Scenario:
    label: str
    build: Callable[[Context], Target]
    prepare: Callable[[Context], None] | None = None
    # A pipeline scenario's own row, made once the load has run (the server still up):
    # the load only feeds the pipeline, the row says what came out of it.
    report: Callable[[Context], table.PipelineRow] | None = None
    # The stock-DRF peer's version of the same request (bench/peer.py), measured in the
    # same rounds.
    peer: Callable[[Context], Target] | None = None
    # Measured in rounds alternating with the plain view. A pipeline scenario runs once:
    # its figure is what the workers did with the load, not the load's own rate.
    paired: bool = True
    # Measured in-process by scenarios_cpu.py too.
    cpu: bool = True
    # How long an unpaired scenario's load runs, when --seconds would be too short for it
    # (a backlog big enough to time a drain by).
    load_seconds: int | None = None
    # Requests at this steady rate (offer_load) instead of as fast as the generator can:
    # what the pipeline does with a given offered load, not with all it can be sent.
    offered_per_second: float | None = None


# "{n}" in a body is replaced by a per-request number, unique over the whole run: the
# check request uses 0, the warm-up counts from 1,000,000, the measured run from 2,000,000
# (zero-padded to 12 digits). Scenarios whose requests must differ (dedup, one-shot ids)
# use it.
PHASE_STARTS = {"check": 0, "warmup": 1_000_000, "measure": 2_000_000}


# Each measured window of a scenario starts this far after the previous one (a retried
# window a third of it further on), so that its request numbers never repeat; decide's
# pool of one-shot emails covers six rounds.
ROUND_STRIDE = 10_000


def fill(body: bytes | None, n: int) -> bytes | None:
    return body.replace(b"{n}", b"%012d" % n) if body is not None else None


def plain_view(ctx: Context) -> Target:
    return Target("GET", "/bench/plain")


def account_get(ctx: Context) -> Target:
    return Target("GET", "/v1/account", ctx.auth)


BASELINE = "plain view (1 INSERT)"
SCENARIOS: list[Scenario] = [
    Scenario(BASELINE, plain_view, paired=False),
    Scenario("GET /v1/account", account_get),
]


# --- Setup ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_database(database_url: str) -> None:
    import psycopg

    parsed = urlparse(database_url)
    name = parsed.path.lstrip("/")
    admin_url = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {PLAIN_TABLE} "
            "(id bigserial PRIMARY KEY, created_at timestamptz NOT NULL)"
        )


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(  # noqa: S603 (fixed argv, no shell)
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def start_server(env: dict[str, str], port: int, workers: int, threads: int) -> subprocess.Popen:
    server = subprocess.Popen(  # noqa: S603 (fixed argv, no shell)
        [
            GUNICORN,
            "multimail.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--log-level",
            "warning",
            # One socket per worker: without it one worker can take all of wrk's keep-alive
            # connections and the run measures one core (held by the GIL), not two.
            "--reuse-port",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    # Generous: on a busy host two workers importing Django can take most of a minute.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"gunicorn exited:\n{server.stderr.read().decode()[-3000:]}")
        try:
            status, _, _ = request(f"http://127.0.0.1:{port}", Target("GET", "/health"))
            # Every worker binds its own socket when it boots: until all have, the kernel
            # hands every connection to the ones that did.
            if status in (200, 503) and listening_sockets(port) >= workers:
                return server
        except OSError:
            pass
        time.sleep(0.2)
    stop_server(server)
    sys.exit(
        f"gunicorn did not answer with {workers} workers listening within 120 s "
        f"({listening_sockets(port)} listening)"
    )


def listening_sockets(port: int) -> int:
    """How many sockets listen on 127.0.0.1:``port`` (Linux /proc/net/tcp)."""
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return 1 << 30  # not Linux: trust the health check
    local = f"0100007F:{port:04X}"
    return sum(1 for line in lines if line.split()[1] == local and line.split()[3] == "0A")


def worker_pids(master: int) -> list[int]:
    """The gunicorn workers: the children of its master process."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                children.append(int(entry.name))
    return sorted(children)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def database_cpu(database_url: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend serving the bench's database (the
    server runs on this host; the web processes keep their connections, so the same
    backends serve a whole window)."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        pids = conn.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return {pid: cpu_seconds(pid) for (pid,) in pids}


def database_cpu_since(database_url: str, before: dict[int, float]) -> float:
    """CPU seconds the bench database's backends used since ``before`` (new ones whole)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in database_cpu(database_url).items())


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


def request(
    base_url: str, target: Target, n: int = PHASE_STARTS["check"]
) -> tuple[int, dict[str, str], bytes]:
    parsed = urlparse(base_url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
    try:
        headers = dict(target.headers)
        if target.body is not None:
            headers.setdefault("Content-Type", "application/json")
        body = fill(target.body, n)
        conn.request(target.method, target.path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


# --- Load -----------------------------------------------------------------------------


@dataclass
class Result:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int = 0
    # Each gunicorn worker's share of the server's CPU during the window, and whether the
    # load was lopsided (one worker idling while another was held to one core).
    worker_shares: list[float] = field(default_factory=list)
    lopsided: bool = False
    # CPU per request of the gunicorn workers and of PostgreSQL's backends in the window.
    server_cpu_ms: float = 0.0
    database_cpu_ms: float = 0.0


def _lua_string(text: str) -> str:
    return f"[==[{text}]==]"


def _lua_table(mapping: dict[str, str]) -> str:
    return "{" + ", ".join(f'["{k}"] = {_lua_string(v)}' for k, v in mapping.items()) + "}"


def _wrk_script(target: Target, start: int = 0) -> str:
    lines = [f'wrk.method = "{target.method}"']
    for name, value in target.headers.items():
        lines.append(f'wrk.headers["{name}"] = [==[{value}]==]')
    if target.body is not None:
        lines.append('wrk.headers["Content-Type"] = "application/json"')
        lines.append(f"wrk.body = [==[{target.body.decode()}]==]")
    if target.body is not None and b"{n}" in target.body:
        # Per-request numbers: wrk's two threads interleave (even/odd) from ``start``.
        variants = target.variants()
        json_headers = [{**headers, "Content-Type": "application/json"} for _, headers in variants]
        lines.append(f"local paths = {{{', '.join(_lua_string(path) for path, _ in variants)}}}")
        lines.append(f"local headers = {{{', '.join(_lua_table(h) for h in json_headers)}}}")
        lines += [
            "local threads = 0",
            "function setup(thread) thread:set('tid', threads); threads = threads + 1 end",
            "local count = 0",
            "function request()",
            f"  local n = {start} + count * 2 + tid",
            "  count = count + 1",
            "  local v = n % #paths + 1",
            '  local body = string.gsub(wrk.body, "{n}", string.format("%012d", n))',
            "  return wrk.format(nil, paths[v], headers[v], body)",
            "end",
        ]
    return "\n".join(lines) + "\n"


def _ms(text: str) -> float:
    units = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
    for unit in ("us", "ms", "s", "m"):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * units[unit]
    return float(text)


def run_wrk(
    base_url: str, target: Target, seconds: int, connections: int, start: int = 0
) -> Result:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_wrk_script(target, start))
    try:
        output = subprocess.run(  # noqa: S603 (fixed argv, no shell)
            [
                shutil.which("wrk") or "wrk",
                "--latency",
                "-t2",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "10s",
                "-s",
                script.name,
                f"{base_url}{target.path}",
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 30,
        ).stdout
    finally:
        os.unlink(script.name)
    percentiles: dict[str, float] = {}
    rps, errors, total, in_distribution = 0.0, 0, 0, False
    for line in output.splitlines():
        words = line.split()
        if line.strip().startswith("Latency Distribution"):
            in_distribution = True
        elif in_distribution and len(words) == 2 and words[0].endswith("%"):
            percentiles[words[0]] = _ms(words[1])
        elif line.startswith("Requests/sec:"):
            rps = float(words[1])
        elif len(words) > 2 and words[1] == "requests" and words[2] == "in":
            total = int(words[0])
        elif "Non-2xx or 3xx responses:" in line:
            errors += int(words[-1])
        elif line.strip().startswith("Socket errors:"):
            errors += sum(int(part.strip(",")) for part in words[3::2])
    return Result(rps, percentiles.get("50%", 0.0), percentiles.get("99%", 0.0), errors, total)


def run_threads(
    base_url: str, target: Target, seconds: int, connections: int, start: int = 0
) -> Result:
    """Fallback generator: one keep-alive connection per thread, for ``seconds``."""
    numbers = itertools.count(start)  # next() on it is atomic under the GIL
    parsed = urlparse(base_url)
    stop_at = time.monotonic() + seconds
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    variants = [
        (
            path,
            {
                **headers,
                **({"Content-Type": "application/json"} if target.body is not None else {}),
            },
        )
        for path, headers in target.variants()
    ]

    def worker(index: int) -> None:
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            try:
                n = next(numbers)
                path, headers = variants[n % len(variants)]
                conn.request(target.method, path, body=fill(target.body, n), headers=headers)
                response = conn.getresponse()
                response.read()
                if response.status != target.expect_status:
                    errors[index] += 1
            except (OSError, http.client.HTTPException):
                errors[index] += 1
                conn.close()
                conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
            latencies[index].append((time.perf_counter() - started) * 1000)
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    begin = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - begin
    flat = sorted(value for chunk in latencies for value in chunk)
    if not flat:
        return Result(0.0, 0.0, 0.0, sum(errors))
    return Result(
        len(flat) / elapsed,
        flat[len(flat) // 2],
        flat[min(len(flat) - 1, int(len(flat) * 0.99))],
        sum(errors),
        len(flat),
    )


def offer_load(base_url: str, target: Target, per_second: float, seconds: int) -> int:
    """``target`` at ``per_second`` requests a second for ``seconds``, each sent at its
    scheduled time (from a pool of threads, so a slow answer does not delay the next
    request). Returns how many were answered with the expected status."""
    from concurrent.futures import ThreadPoolExecutor

    total = int(per_second * seconds)
    start = time.monotonic()

    def one(n: int) -> bool:
        if (pause := start + n / per_second - time.monotonic()) > 0:
            time.sleep(pause)
        status, _, _ = request(base_url, target, PHASE_STARTS["measure"] + n)
        return status == target.expect_status

    with ThreadPoolExecutor(max_workers=16) as pool:
        return sum(pool.map(one, range(total)))


def load_in_subprocess(
    base_url: str, target: Target, seconds: int, connections: int, use_wrk: bool, start: int = 0
) -> Result:
    """The generator runs in its own process so it does not share the GIL with anything."""
    if use_wrk:
        return run_wrk(base_url, target, seconds, connections, start)
    payload = json.dumps(
        {
            "base_url": base_url,
            "target": {
                "method": target.method,
                "path": target.path,
                "headers": target.headers,
                "body": target.body.decode() if target.body is not None else None,
                "expect_status": target.expect_status,
                "rotate": target.rotate,
            },
            "seconds": seconds,
            "connections": connections,
            "start": start,
        }
    )
    output = subprocess.run(  # noqa: S603 (fixed argv, no shell)
        [sys.executable, __file__, "--generate"],
        input=payload,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    return Result(**json.loads(output))


def _generate_from_stdin() -> None:
    spec = json.load(sys.stdin)
    raw = spec["target"]
    target = Target(
        raw["method"],
        raw["path"],
        raw["headers"],
        raw["body"].encode() if raw["body"] is not None else None,
        raw["expect_status"],
        [(path, headers) for path, headers in raw["rotate"]],
    )
    result = run_threads(
        spec["base_url"], target, spec["seconds"], spec["connections"], spec.get("start", 0)
    )
    print(json.dumps(result.__dict__))


# --- Rounds ---------------------------------------------------------------------------

LOPSIDED_RETRIES = 2


def measure(
    base_url: str,
    target: Target,
    args: argparse.Namespace,
    use_wrk: bool,
    start: int,
    workers: list[int],
) -> Result:
    """One measured window, with each worker's share of the server's CPU during it. A
    window in which one worker did less than half its fair share is lopsided (the kernel's
    spread of connections, or a host that stalled one process): it is retried, and flagged
    if it stays so."""
    result = Result(0.0, 0.0, 0.0, 0)
    for attempt in range(LOPSIDED_RETRIES + 1):
        database_before = database_cpu(args.database_url)
        before = [cpu_seconds(pid) for pid in workers]
        result = load_in_subprocess(
            base_url,
            target,
            args.seconds,
            args.connections,
            use_wrk,
            start + attempt * (ROUND_STRIDE // (LOPSIDED_RETRIES + 1)),
        )
        used = [cpu_seconds(pid) - b for pid, b in zip(workers, before, strict=True)]
        database_used = database_cpu_since(args.database_url, database_before)
        total = sum(used)
        if result.requests:
            result.server_cpu_ms = total * 1000 / result.requests
            result.database_cpu_ms = database_used * 1000 / result.requests
        result.worker_shares = [u / total for u in used] if total > 0 else []
        result.lopsided = len(used) > 1 and total > 0 and min(used) / total < 0.5 / len(used)
        if not result.lopsided:
            break
    return result


def run_rounds(
    base_url: str,
    scenario: Scenario,
    ctx: Context,
    args: argparse.Namespace,
    use_wrk: bool,
    workers: list[int],
) -> table.Measured:
    """The scenario (and its peer) in ``args.rounds`` rounds, each preceded by the plain view:
    the ratio of each round is taken against the plain view of the same round, so a host
    that slows down mid-run moves both figures together."""
    plain = plain_view(ctx)
    targets = {"project": scenario.build(ctx)}
    if scenario.peer is not None:
        targets["peer"] = scenario.peer(ctx)
    queries = {}
    for name, target in targets.items():
        check(base_url, scenario.label, target)
        load_in_subprocess(
            base_url, target, args.warmup, args.connections, use_wrk, PHASE_STARTS["warmup"]
        )
        # Sampled after the warm-up: first-use writes (the key's last_used_at, the usage
        # counter flush) are periodic, not per request. A fresh {n}: repeating the check's
        # body would measure a duplicate's path.
        queries[name] = request(base_url, target, PHASE_STARTS["check"] + 1)[1].get(
            "X-Query-Count", "?"
        )
    measured = table.Measured(scenario.label, queries=queries["project"])
    if "peer" in queries:
        measured.peer_queries = queries["peer"]
    for index in range(args.rounds):
        start = PHASE_STARTS["measure"] + index * ROUND_STRIDE
        measured.plain.append(table.window(measure(base_url, plain, args, use_wrk, 0, workers)))
        for name, target in targets.items():
            result = table.window(measure(base_url, target, args, use_wrk, start, workers))
            (measured.rounds if name == "project" else measured.peer_rounds).append(result)
    return measured


def check(base_url: str, label: str, target: Target) -> None:
    status, _, body = request(base_url, target)
    if status != target.expect_status:
        sys.exit(f"{label}: got {status}, not {target.expect_status}: {body[:300]!r}")


def cpu_pass(env: dict[str, str], labels: list[str], requests: int) -> dict[str, table.Cpu]:
    """scenarios_cpu.py in its own process, once the server is down: its figure is that
    process's CPU time, so nothing else may run in it."""
    result = subprocess.run(  # noqa: S603 (fixed argv, no shell)
        [PYTHON, str(ROOT / "bench" / "scenarios_cpu.py"), "--requests", str(requests), "--json"]
        + [arg for label in labels for arg in ("--only", label)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        print(f"scenarios_cpu.py failed:\n{result.stderr[-3000:]}", file=sys.stderr)
        return {}
    # The figures are the last line: anything a scenario's preparation printed comes before.
    lines = result.stdout.strip().splitlines()
    try:
        figures = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        print(f"scenarios_cpu.py printed no figures:\n{result.stdout[-3000:]}", file=sys.stderr)
        return {}
    return {label: table.Cpu(**cpu) for label, cpu in figures.items()}


# --- Main -----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="measured time per window")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured time per scenario")
    parser.add_argument(
        "--rounds", type=int, default=3, help="windows per scenario, each after a plain one"
    )
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--generator", choices=["auto", "wrk", "threads"], default="auto")
    parser.add_argument(
        "--cpu-requests",
        type=int,
        default=200,
        help="requests per repetition of the in-process CPU pass (0 skips it)",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="TEXT",
        help="run only the scenarios whose label contains TEXT (repeatable; the plain view "
        "always runs, as the reference)",
    )
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        _generate_from_stdin()
        return

    database_url = args.database_url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    redis_url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    use_wrk = bool(args.generator == "wrk" or (args.generator == "auto" and shutil.which("wrk")))
    # The bench process itself makes the scenarios' data with Django: it gets the server's
    # environment too.
    os.environ.update(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "MULTIMAIL_BENCH": "1",
            "LOG_LEVEL": "WARNING",
            # The bench measures the request path, not the per-key budgets.
            "API_RATE_LIMIT_READ_PER_MINUTE": str(10**9),
            "API_RATE_LIMIT_SEND_PER_MINUTE": str(10**9),
            "DJANGO_SETTINGS_MODULE": "multimail.settings",
        }
    )
    import scenarios  # the mail-path scenarios; sets the environment they need

    SCENARIOS.extend(scenarios.register())
    env = dict(os.environ)
    chosen = [
        s
        for s in SCENARIOS
        if s.label != BASELINE and (not args.only or any(t in s.label for t in args.only))
    ]
    ensure_database(database_url)
    manage(env, "migrate", "--noinput", "-v", "0")
    stamp = time.strftime("%Y%m%d%H%M%S")
    created = json.loads(
        manage(
            env,
            "create_account",
            "--name",
            f"Bench {stamp}",
            "--email",
            f"bench-{stamp}@bench.example",
            "--plan",
            "scale",
            "--json",
        )
    )
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    ctx = Context(
        base_url=base_url,
        api_key=created["api_key"],
        account_id=created["account_id"],
        slug=created["slug"],
        mailbox_id=created["mailbox_id"],
        mailbox_address=created["mailbox_address"],
    )
    started = time.monotonic()
    server = start_server(env, port, args.workers, args.threads)
    workers = worker_pids(server.pid)
    rows: list[table.Measured | table.PipelineRow] = []
    try:
        check(base_url, BASELINE, plain_view(ctx))
        load_in_subprocess(base_url, plain_view(ctx), args.warmup, args.connections, use_wrk)
        for scenario in chosen:
            print(f"  {scenario.label} ...", flush=True)
            if scenario.prepare is not None:
                scenario.prepare(ctx)
            if scenario.paired:
                rows.append(run_rounds(base_url, scenario, ctx, args, use_wrk, workers))
            elif scenario.offered_per_second is not None:
                target = scenario.build(ctx)
                offer_load(
                    base_url,
                    target,
                    scenario.offered_per_second,
                    max(args.seconds, scenario.load_seconds or 0),
                )
            else:
                target = scenario.build(ctx)
                check(base_url, scenario.label, target)
                load_in_subprocess(
                    base_url,
                    target,
                    max(args.seconds, scenario.load_seconds or 0),
                    args.connections,
                    use_wrk,
                    PHASE_STARTS["measure"],
                )
            if scenario.report is not None:
                rows.append(scenario.report(ctx))
    finally:
        stop_server(server)

    cpu: dict[str, table.Cpu] = {}
    if args.cpu_requests > 0:
        print("  CPU per request in-process ...", flush=True)
        labels = [s.label for s in chosen if s.cpu]
        cpu = cpu_pass(env, labels, args.cpu_requests)
    generator = "wrk" if use_wrk else "threads" + ("" if shutil.which("wrk") else " (no wrk)")
    print(
        f"\n{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}; {args.workers} gunicorn workers x "
        f"{args.threads} threads (SO_REUSEPORT), {args.connections} connections, "
        f"{args.rounds} rounds of {args.seconds} s per scenario, each after a plain-view "
        f"window; generator: {generator}; {time.monotonic() - started:.0f} s\n"
    )
    print(table.render(rows, cpu, baseline=BASELINE))


if __name__ == "__main__":
    main()
