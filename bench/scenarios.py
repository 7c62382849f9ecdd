"""The mail-path scenarios of the bench: send, inbound, reading at scale, oversight, and the
end-to-end outbound pipeline into a local SMTP sink.

``register()`` is called by run.py before it starts the server; it sets the environment
the scenarios need (a Redis broker, so a send is accepted and queued rather than run in
the web process; the Postmark webhook credentials) and returns the scenarios. Data is
made with the ORM for single rows and with one ``INSERT ... SELECT generate_series`` for
bulk (a million emails take about a minute); the bulk set is reused by later runs.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from email import message_from_bytes
from typing import Any
from urllib.parse import urlencode

from run import (
    DEFAULT_DATABASE_URL,
    DEFAULT_REDIS_URL,
    PHASE_STARTS,
    PYTHON,
    ROOT,
    Context,
    Scenario,
    Target,
    cpu_seconds,
    database_cpu,
    database_cpu_since,
    free_port,
    worker_pids,
)
from table import PipelineRow

WEBHOOK_SECRET = "bench:inbound-secret"
BULK_EMAILS = int(os.environ.get("BENCH_BULK_EMAILS", "1000000"))
PENDING_EMAILS = 10_000
# Decide is one-shot per email: every request of a phase needs its own pending email.
DECIDE_POOL_PER_PHASE = 60_000
DEEP_OFFSET = 900_000
E2E_DRAIN_TIMEOUT = 240
E2E_WORKERS = 2
# Sends accepted before the drain's workers start: about a thousand at today's accept rate.
DRAIN_LOAD_SECONDS = 12
# The latency target: accept to hand-off p50 under 2 s while 50 sends a second are
# offered (over HTTP, to the running server, with the workers delivering).
OFFERED_PER_SECOND = 50
OFFERED_SECONDS = 20
# More new PostgreSQL connections per email than this: the worker does not keep them.
CHURN_SESSIONS_PER_EMAIL = 0.1
# Sends of one account queue on its row lock (exact quotas); other accounts' do not.
SEND_TENANTS = 8

_django_ready = False


def broker_url() -> str:
    """The cache's Redis database: Celery's keys (celery, unacked*, _kombu.*) do not meet the
    cache's prefixed ones, and a bench run then stays inside the one database it was given."""
    return os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)


def register() -> list[Scenario]:
    os.environ.setdefault("CELERY_BROKER_URL", broker_url())
    os.environ.setdefault("POSTMARK_WEBHOOK_SECRET", WEBHOOK_SECRET)
    return [
        Scenario(
            "POST send (accept+queue)", send_target, prepare=send_prepare, peer=peer_send_target
        ),
        Scenario(
            f"POST send, {SEND_TENANTS} accounts",
            send_tenants_target,
            prepare=send_tenants_prepare,
            cpu=False,  # the same request as the one above, for several tenants
        ),
        Scenario("POST postmark-inbound", inbound_target, prepare=inbound_prepare),
        Scenario(
            "GET emails, first page",
            list_first_target,
            prepare=bulk_prepare,
            peer=peer_list_first_target,
        ),
        Scenario("GET emails, cursor 900k", list_deep_target, prepare=bulk_prepare),
        Scenario("GET one email", read_one_target, prepare=bulk_prepare, peer=peer_read_one_target),
        Scenario("GET emails, search 1M", search_target, prepare=bulk_prepare, cpu=False),
        Scenario("GET oversight/pending 10k", pending_target, prepare=pending_prepare),
        Scenario("POST oversight/decide", decide_target, prepare=decide_prepare),
        Scenario(
            "send -> SMTP sink (e2e)",
            e2e_target,
            prepare=e2e_prepare,
            report=e2e_report,
            paired=False,
            cpu=False,
        ),
        Scenario(
            f"send at {OFFERED_PER_SECOND}/s -> SMTP sink",
            offered_target,
            prepare=offered_prepare,
            report=offered_report,
            paired=False,
            cpu=False,
            load_seconds=OFFERED_SECONDS,
            offered_per_second=OFFERED_PER_SECOND,
        ),
        Scenario(
            f"drain a backlog ({E2E_WORKERS} workers)",
            drain_target,
            prepare=drain_prepare,
            report=drain_report,
            paired=False,
            cpu=False,
            load_seconds=DRAIN_LOAD_SECONDS,
        ),
    ]


# --- Django in the bench process (data set-up only; the load runs elsewhere) -----------


def _django() -> None:
    global _django_ready
    if _django_ready:
        return
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ.setdefault("REDIS_URL", DEFAULT_REDIS_URL)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "multimail.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    _django_ready = True


def _done_with_db() -> None:
    from django.db import connections

    connections.close_all()


def _tenant(slug: str, *, mode: str) -> tuple[Any, Any]:
    """An active account with one warmed-up mailbox (past the warm-up caps)."""
    from django.conf import settings
    from django.utils import timezone

    from accounts.models import Account, AccountState
    from mailboxes.models import Mailbox

    account, _ = Account.objects.get_or_create(
        slug=slug,
        defaults={
            "name": f"Bench {slug}",
            "oversight_email": f"ops@{slug}.bench.example",
            "plan": "scale",
            "state": AccountState.ACTIVE,
            "activated_at": timezone.now(),
            "require_operator_approval": False,
        },
    )
    mailbox, _ = Mailbox.objects.get_or_create(
        address=f"agent@{slug}.{settings.MAIL_DOMAIN}",
        defaults={"account": account, "oversight_mode": mode},
    )
    Mailbox.objects.filter(pk=mailbox.pk).update(
        created_at=timezone.now() - timedelta(days=60), oversight_mode=mode
    )
    return account, mailbox


def _key(account: Any, *scopes: str) -> str:
    from accounts.services import api_key_create

    return api_key_create(account=account, name="bench", scopes=list(scopes))[1]


def _bulk_insert(
    *, mailbox: Any, first: int, last: int, id_prefix: str, direction: str, status: str
) -> None:
    """Emails ``first..last`` in one statement; ids ``id_prefix`` + 12-digit number.

    Every column the model has gets its model default unless named here, so fields other
    areas add later are filled in too.
    """
    from django.db import connection

    from mailboxes.models import Email

    width = 26 - len(id_prefix)
    special: dict[str, tuple[str, list[Any]]] = {
        "id": (f"%s || lpad(g.n::text, {width}, '0')", [id_prefix]),
        "account_id": ("%s", [mailbox.account_id]),
        "mailbox_id": ("%s", [mailbox.pk]),
        "direction": ("%s", [direction]),
        "status": ("%s", [status]),
        "from_address": ("'sender' || g.n || '@example.org'", []),
        "to": ("jsonb_build_array(%s::text)", [mailbox.address]),
        "subject": ("'Bench email ' || g.n", []),
        "markdown": ("'Hello, this is bench email number ' || g.n || '.'", []),
        "text": ("'Hello, this is bench email number ' || g.n || '.'", []),
        "thread_id": (f"%s || lpad(g.n::text, {width}, '0')", [id_prefix]),
        "message_id": ("'<bench-' || %s || g.n || '@example.org>'", [id_prefix]),
        "received_at": ("now() - make_interval(secs => %s - g.n)", [last]),
        "status_changed_at": ("now()", []),
        "size_bytes": ("64", []),
    }
    columns, expressions, params = [], [], []
    for field in Email._meta.concrete_fields:
        columns.append(connection.ops.quote_name(field.column))
        if field.column in special:
            expression, values = special[field.column]
        else:
            expression, values = "%s", [field.get_db_prep_save(field.get_default(), connection)]
        expressions.append(expression)
        params += values
    sql = (
        f"INSERT INTO {Email._meta.db_table} ({', '.join(columns)}) "  # noqa: S608 (fixed names)
        f"SELECT {', '.join(expressions)} FROM generate_series(%s::bigint, %s::bigint) AS g(n)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, first, last])
        cursor.execute(f"ANALYZE {Email._meta.db_table}")


def _ensure_bulk(mailbox: Any, *, count: int, id_prefix: str, direction: str, status: str) -> None:
    from mailboxes.models import Email

    have = Email.objects.filter(mailbox=mailbox).count()
    if have >= count:
        return
    started = time.monotonic()
    print(f"  generating {count - have:,} emails for {mailbox.address} ...", flush=True)
    _bulk_insert(
        mailbox=mailbox,
        first=have + 1,
        last=count,
        id_prefix=id_prefix,
        direction=direction,
        status=status,
    )
    print(f"  ... done in {time.monotonic() - started:.0f} s", flush=True)


# --- send and inbound -----------------------------------------------------------------


def send_prepare(ctx: Context) -> None:
    _django()
    from django.utils import timezone

    from mailboxes.models import Mailbox

    # A warmed-up mailbox: the bench measures the request path, not the warm-up cap.
    Mailbox.objects.filter(pk=ctx.mailbox_id).update(created_at=timezone.now() - timedelta(days=60))
    # The peer sends from a tenant of its own: its emails must not add to the count the
    # project's monthly quota check makes for the run's account.
    account, mailbox = _tenant(f"bench-peer-{time.strftime('%m%d%H%M%S')}", mode="autonomous")
    ctx.extra["peer_send"] = (mailbox.pk, _key(account, "send"))
    _done_with_db()


def send_target(ctx: Context) -> Target:
    body = {
        "to": ["customer@example.org"],
        "subject": "Order {n} confirmed",  # distinct, so the 60 s duplicate check passes
        "markdown": "Hello,\n\nyour order **{n}** is confirmed. [Track it](https://example.org/t).",
    }
    return Target(
        "POST",
        f"/v1/mailboxes/{ctx.mailbox_id}/send",
        ctx.auth,
        json.dumps(body).encode(),
        expect_status=202,
    )


def peer_send_target(ctx: Context) -> Target:
    """The stock-DRF peer's send (bench/peer.py): store and queue, nothing else."""
    mailbox_id, key = ctx.extra["peer_send"]
    return Target(
        "POST",
        f"/bench/peer/mailboxes/{mailbox_id}/send",
        {"Authorization": f"Bearer {key}"},
        send_target(ctx).body,
        expect_status=201,
    )


def send_tenants_prepare(ctx: Context) -> None:
    """Accounts of their own, each with a warmed-up mailbox and a send key."""
    _django()
    stamp = time.strftime("%m%d%H%M%S")
    ctx.extra["send_tenants"] = []
    for index in range(SEND_TENANTS):
        account, mailbox = _tenant(f"bench-send{index}-{stamp}", mode="gated_send")
        ctx.extra["send_tenants"].append((mailbox.pk, _key(account, "send")))
    _done_with_db()


def send_tenants_target(ctx: Context) -> Target:
    """The send request of ``send_target``, spread over several accounts: what one server
    accepts when its tenants send at once, rather than one account's ceiling."""
    single = send_target(ctx)
    variants = [
        (f"/v1/mailboxes/{mailbox_id}/send", {"Authorization": f"Bearer {key}"})
        for mailbox_id, key in ctx.extra["send_tenants"]
    ]
    (path, headers), *rotate = variants
    return Target(
        "POST", path, headers, single.body, expect_status=single.expect_status, rotate=rotate
    )


def inbound_prepare(ctx: Context) -> None:
    """Its own tenant: the send scenario's backlog may still be draining on the server."""
    _django()
    _, mailbox = _tenant(f"bench-in-{time.strftime('%m%d%H%M%S')}", mode="gated_send")
    ctx.extra["inbound_address"] = mailbox.address
    _done_with_db()


def inbound_target(ctx: Context) -> Target:
    fixture = ROOT / "tests" / "inbound" / "fixtures" / "postmark_inbound.json"
    payload = json.loads(fixture.read_text())
    address = ctx.extra["inbound_address"]
    payload["To"] = f'"Agent" <{address}>'
    payload["ToFull"] = [{"Email": address, "Name": "Agent", "MailboxHash": ""}]
    payload["OriginalRecipient"] = address
    payload["MessageID"] = "bench-{n}"
    payload["Headers"] = [
        header for header in payload.get("Headers", []) if header["Name"] != "Message-ID"
    ] + [{"Name": "Message-ID", "Value": "<inbound-{n}@bench.example>"}]
    credentials = base64.b64encode(WEBHOOK_SECRET.encode()).decode()
    return Target(
        "POST",
        "/v1/webhooks/postmark-inbound",
        {"Authorization": f"Basic {credentials}"},
        json.dumps(payload).encode(),
    )


# --- reading a mailbox of a million emails --------------------------------------------


def bulk_prepare(ctx: Context) -> None:
    if "bulk" in ctx.extra:
        return
    _django()
    from multimail.pagination import encode_cursor

    account, mailbox = _tenant("bench-bulk", mode="autonomous")
    _ensure_bulk(mailbox, count=BULK_EMAILS, id_prefix="00BULK", direction="inbound", status="read")
    width = 26 - len("00BULK")
    deep_id = f"00BULK{BULK_EMAILS - DEEP_OFFSET:0{width}d}"
    ctx.extra["bulk"] = {
        "mailbox": mailbox.pk,
        "key": _key(account, "read"),
        "deep_cursor": encode_cursor(deep_id),
        "one": f"00BULK{BULK_EMAILS // 2:0{width}d}",
    }
    _done_with_db()


def _bulk_auth(ctx: Context) -> dict[str, str]:
    return {"Authorization": f"Bearer {ctx.extra['bulk']['key']}"}


def list_first_target(ctx: Context) -> Target:
    return Target("GET", f"/v1/mailboxes/{ctx.extra['bulk']['mailbox']}/emails", _bulk_auth(ctx))


def list_deep_target(ctx: Context) -> Target:
    bulk = ctx.extra["bulk"]
    return Target(
        "GET",
        f"/v1/mailboxes/{bulk['mailbox']}/emails?cursor={bulk['deep_cursor']}",
        _bulk_auth(ctx),
    )


def read_one_target(ctx: Context) -> Target:
    bulk = ctx.extra["bulk"]
    return Target("GET", f"/v1/mailboxes/{bulk['mailbox']}/emails/{bulk['one']}", _bulk_auth(ctx))


def peer_list_first_target(ctx: Context) -> Target:
    bulk = ctx.extra["bulk"]
    return Target("GET", f"/bench/peer/mailboxes/{bulk['mailbox']}/emails", _bulk_auth(ctx))


def peer_read_one_target(ctx: Context) -> Target:
    bulk = ctx.extra["bulk"]
    return Target(
        "GET", f"/bench/peer/mailboxes/{bulk['mailbox']}/emails/{bulk['one']}", _bulk_auth(ctx)
    )


# What an agent looks for: a word from a subject, a phrase, a sender. Each query names one
# email's number, so the page is the few emails that match out of the million; the queries
# rotate so that no single cached plan or page answers them all.
SEARCH_QUERIES = (
    "{n}",
    '"bench email {n}"',
    "from:sender{n}@example.org hello",
    "number {n} -unrelated",
)
SEARCH_VARIANTS = 40


def search_target(ctx: Context) -> Target:
    bulk = ctx.extra["bulk"]
    path = f"/v1/mailboxes/{bulk['mailbox']}/emails"
    step = max(BULK_EMAILS // SEARCH_VARIANTS, 1)
    variants = [
        (
            f"{path}?{urlencode({'q': SEARCH_QUERIES[i % len(SEARCH_QUERIES)].format(n=n)})}",
            _bulk_auth(ctx),
        )
        for i, n in enumerate(range(1, BULK_EMAILS + 1, step))
    ]
    (first, headers), *rotate = variants
    return Target("GET", first, headers, rotate=rotate)


# --- oversight -------------------------------------------------------------------------


def pending_prepare(ctx: Context) -> None:
    _django()
    account, mailbox = _tenant("bench-pending", mode="gated_send")
    _ensure_bulk(
        mailbox,
        count=PENDING_EMAILS,
        id_prefix="00PEND",
        direction="outbound",
        status="pending_send_approval",
    )
    ctx.extra["pending_key"] = _key(account, "oversight_read")
    _done_with_db()


def pending_target(ctx: Context) -> Target:
    return Target(
        "GET", "/v1/oversight/pending", {"Authorization": f"Bearer {ctx.extra['pending_key']}"}
    )


DECIDE_PREFIX = "0DECIDE" + "0" * 7  # 14 characters + the 12-digit request number


def decide_prepare(ctx: Context) -> None:
    """A fresh pool each run: the check request's email and one per request of each phase."""
    _django()
    from mailboxes.models import Email

    stamp = time.strftime("%m%d%H%M%S")
    account, mailbox = _tenant(f"bench-decide-{stamp}", mode="gated_send")
    prefix = f"0DC{stamp}0"
    assert len(prefix) == 14
    for start, size in (
        (PHASE_STARTS["check"], 2),  # the check request and the query-count sample
        (PHASE_STARTS["warmup"], DECIDE_POOL_PER_PHASE),
        (PHASE_STARTS["measure"], DECIDE_POOL_PER_PHASE),
    ):
        _bulk_insert(
            mailbox=mailbox,
            first=start,
            last=start + size - 1,
            id_prefix=prefix,
            direction="outbound",
            status="pending_send_approval",
        )
    assert Email.objects.filter(mailbox=mailbox).count() == 2 + 2 * DECIDE_POOL_PER_PHASE
    ctx.extra["decide"] = {"key": _key(account, "oversight"), "prefix": prefix}
    _done_with_db()


def decide_target(ctx: Context) -> Target:
    decide = ctx.extra["decide"]
    body = json.dumps({"email_id": decide["prefix"] + "{n}", "action": "approve"}).encode()
    return Target(
        "POST", "/v1/oversight/decide", {"Authorization": f"Bearer {decide['key']}"}, body
    )


# --- end to end: accepted -> worker -> SMTP relay --------------------------------------


class _Sink:
    """An SMTP server on loopback that only notes when each message first arrived, and how
    many times each came."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's per-command log
        self.arrivals: dict[str, float] = {}
        self.copies: Counter[str] = Counter()
        self.lock = threading.Lock()
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                # A Message-ID short enough to fit on a continuation line is folded there
                # ("Message-ID:\r\n <id>", valid RFC 5322): compare it unfolded.
                message_id = str(message_from_bytes(envelope.content)["Message-ID"] or "").strip()
                with sink.lock:
                    sink.arrivals.setdefault(message_id, time.time())
                    sink.copies[message_id] += 1
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


def _clear_broker() -> None:
    """Tasks the other scenarios left queued would be drained first and skew the figure."""
    import redis

    broker = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"])
    # (Scans queue at a lower priority, under "celery" plus a priority suffix.)
    for pattern in ("celery*", "unacked*", "_kombu.*"):
        for key in broker.scan_iter(pattern):
            broker.delete(key)


def _start_worker(sink: _Sink) -> subprocess.Popen[bytes]:
    """A Celery worker of E2E_WORKERS processes that hands mail to ``sink`` over SMTP."""
    (ROOT / "var").mkdir(exist_ok=True)  # absent on a fresh checkout that never ran the service
    log = open(ROOT / "var" / "bench-worker.log", "a")  # noqa: SIM115 (lives with the worker)
    return subprocess.Popen(  # noqa: S603 (fixed argv, no shell)
        [
            PYTHON, "-m", "celery", "-A", "multimail", "worker", "--loglevel", "WARNING",
            "--concurrency", str(E2E_WORKERS), "--without-gossip", "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "LOG_LEVEL": "WARNING",
            "MULTIMAIL_MAIL_BACKEND": "smtp",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(sink.port),
        },
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def _running_pipeline(ctx: Context, name: str) -> None:
    """A tenant of its own, a sink and a running worker, in ``ctx.extra[name]``."""
    _django()
    _clear_broker()
    account, mailbox = _tenant(f"bench-{name}-{time.strftime('%m%d%H%M%S')}", mode="autonomous")
    sink = _Sink()
    worker = _start_worker(sink)
    time.sleep(5)  # let the worker connect before the clock starts
    ctx.extra[name] = {
        "mailbox": mailbox.pk,
        "key": _key(account, "send"),
        "sink": sink,
        "worker": worker,
    }
    _done_with_db()


def e2e_prepare(ctx: Context) -> None:
    _running_pipeline(ctx, "e2e")


def offered_prepare(ctx: Context) -> None:
    _running_pipeline(ctx, "offered")
    # The workers deliver while the load runs, before the report: their CPU and the
    # database's work are counted from here (idle polling included), not from the report's
    # first poll, which would find every email delivered already.
    run = ctx.extra["offered"]
    database_url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    run["counted_from"] = (
        0,
        _worker_cpu(run["worker"]),
        database_cpu(database_url),
        _database_totals(database_url),
    )


def offered_target(ctx: Context) -> Target:
    return _pipeline_send(ctx.extra["offered"])


def offered_report(ctx: Context) -> PipelineRow:
    """Sends offered at a steady rate while the workers deliver: emails/s from the first
    accept to the last hand-off, and each email's time from accept to the sink."""
    drained = _drain(ctx.extra["offered"])
    first = min(drained.accepted.values(), default=0.0)
    return _pipeline_row(f"send at {OFFERED_PER_SECOND}/s -> SMTP sink", drained, since=first)


def _pipeline_send(run: dict[str, Any]) -> Target:
    """A send into a pipeline scenario's autonomous mailbox."""
    body = {"to": ["lead@example.org"], "subject": "Offer {n}", "markdown": "Terms for **{n}**."}
    return Target(
        "POST",
        f"/v1/mailboxes/{run['mailbox']}/send",
        {"Authorization": f"Bearer {run['key']}"},
        json.dumps(body).encode(),
        expect_status=202,
    )


def e2e_target(ctx: Context) -> Target:
    return _pipeline_send(ctx.extra["e2e"])


def e2e_report(ctx: Context) -> PipelineRow:
    """Sends while the workers deliver: emails/s from the first accept to the last hand-off,
    and each email's time from accept to the sink."""
    drained = _drain(ctx.extra["e2e"])
    first = min(drained.accepted.values(), default=0.0)
    return _pipeline_row("send -> SMTP sink (e2e)", drained, since=first)


def drain_prepare(ctx: Context) -> None:
    """A backlog: the load's sends are accepted with no worker running; the report starts
    the workers and times them through it."""
    _django()
    _clear_broker()
    account, mailbox = _tenant(f"bench-drain-{time.strftime('%m%d%H%M%S')}", mode="autonomous")
    ctx.extra["drain"] = {"mailbox": mailbox.pk, "key": _key(account, "send"), "sink": _Sink()}
    _done_with_db()


def drain_target(ctx: Context) -> Target:
    return _pipeline_send(ctx.extra["drain"])


def drain_report(ctx: Context) -> PipelineRow:
    """The backlog's emails/s from the first hand-off to the last (the workers' boot is not
    in it); each email's latency counts from that first hand-off, when a worker was
    first taking mail, not from its accept (all were accepted before the workers ran)."""
    drain = ctx.extra["drain"]
    started = time.time()
    drain["worker"] = _start_worker(drain["sink"])
    drained = _drain(drain)
    first = min(drained.arrivals.values(), default=started)
    drained.accepted = {mid: max(at, first) for mid, at in drained.accepted.items()}
    row = _pipeline_row(f"drain a backlog ({E2E_WORKERS} workers)", drained, since=first)
    row.note += f"; first hand-off {first - started:.1f} s after the workers were started"
    return row


@dataclass
class _Drained:
    accepted: dict[str, float]  # Message-ID -> accepted at (epoch seconds)
    arrivals: dict[str, float]  # Message-ID -> reached the sink at
    twice: int  # emails that reached the sink more than once
    statuses: dict[str, int]
    # CPU per email from the first hand-off on: the worker processes', PostgreSQL's.
    worker_cpu_ms: float
    database_cpu_ms: float
    commits_per_email: float
    sessions_per_email: float
    database_active_ms: float


def _database_totals(database_url: str) -> tuple[int, int, float]:
    """(transactions committed, sessions opened, ms spent running statements) in the bench
    database so far. PostgreSQL's statistics lag by up to a second: figures over tens of
    seconds only. Unlike the backends' CPU they keep what sessions that ended did, which
    matters while the worker opens a connection per task."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit, sessions, active_time FROM pg_stat_database "
            "WHERE datname = current_database()"
        ).fetchone()
    return (int(row[0]), int(row[1]), float(row[2])) if row else (0, 0, 0.0)


def _worker_cpu(worker: subprocess.Popen[bytes]) -> float:
    return sum(cpu_seconds(pid) for pid in [worker.pid, *worker_pids(worker.pid)])


def _drain(run: dict[str, Any]) -> _Drained:
    """Wait until the worker has handed every accepted email of the run's mailbox to the
    sink (or E2E_DRAIN_TIMEOUT passed), then stop it."""
    from django.db.models import Count

    from mailboxes.models import Email

    sink: _Sink = run["sink"]
    worker: subprocess.Popen[bytes] = run["worker"]
    emails = Email.objects.filter(mailbox_id=run["mailbox"])
    database_url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    # The CPU is counted from the first poll that sees a hand-off, for the emails handed
    # off after it: the worker's boot and the wait for the first task stay out of it.
    counted_from: tuple[int, float, dict[int, float], tuple[int, int, float]] | None = run.get(
        "counted_from"
    )
    worker_cpu = database_cpu_used = 0.0
    totals = (0, 0, 0.0)
    try:
        # Requests still queued in the server may be accepted after the load stopped: done
        # once every accepted email reached the sink and no new one came for 2 s.
        deadline = time.monotonic() + E2E_DRAIN_TIMEOUT
        accepted: dict[str, float] = {}
        settled = 0
        while time.monotonic() < deadline and settled < 4:
            time.sleep(0.5)
            now_accepted = {
                mid: at.timestamp() for mid, at in emails.values_list("message_id", "received_at")
            }
            with sink.lock:
                arrived = len(sink.arrivals)
                drained = all(mid in sink.arrivals for mid in now_accepted)
            if counted_from is None and arrived:
                counted_from = (
                    arrived,
                    _worker_cpu(worker),
                    database_cpu(database_url),
                    _database_totals(database_url),
                )
            settled = settled + 1 if drained and len(now_accepted) == len(accepted) else 0
            accepted = now_accepted
        if counted_from is not None:
            worker_cpu = _worker_cpu(worker) - counted_from[1]
            database_cpu_used = database_cpu_since(database_url, counted_from[2])
            now = _database_totals(database_url)
            totals = (
                now[0] - counted_from[3][0],
                now[1] - counted_from[3][1],
                now[2] - counted_from[3][2],
            )
        statuses = dict(emails.values_list("status").annotate(n=Count("id")).order_by())
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
        sink.stop()
        _done_with_db()
    with sink.lock:
        arrivals = {mid: at for mid, at in sink.arrivals.items() if mid in accepted}
        twice = sum(1 for mid in arrivals if sink.copies[mid] > 1)
    counted = len(arrivals) - (counted_from[0] if counted_from else 0)
    return _Drained(
        accepted,
        arrivals,
        twice,
        statuses,
        worker_cpu * 1000 / counted if counted > 0 else 0.0,
        database_cpu_used * 1000 / counted if counted > 0 else 0.0,
        *(total / counted if counted > 0 else 0.0 for total in totals),
    )


def _pipeline_row(label: str, drained: _Drained, *, since: float) -> PipelineRow:
    accepted, arrivals = drained.accepted, drained.arrivals
    if not arrivals:
        return PipelineRow(
            label, 0.0, 0.0, 0.0, f"nothing reached the SMTP sink ({drained.statuses})"
        )
    last = max(arrivals.values())
    latencies = sorted((arrivals[mid] - accepted[mid]) * 1000 for mid in arrivals)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    note = (
        f"{len(arrivals)}/{len(accepted)} delivered in {last - since:.1f} s, "
        f"{drained.twice} of them more than once; per email {drained.commits_per_email:.1f} "
        f"PostgreSQL commits, {drained.sessions_per_email:.1f} new connections, "
        f"{drained.database_active_ms:.1f} ms running statements; statuses {drained.statuses}"
    )
    # The backends' CPU is read from /proc at both ends: a backend that served one task
    # and exited in between took its CPU with it, so the figure would be far too low.
    database_cpu_ms = drained.database_cpu_ms
    if drained.sessions_per_email >= CHURN_SESSIONS_PER_EMAIL:
        database_cpu_ms = 0.0
        note += (
            "; PostgreSQL CPU not shown: the worker's connections end before it can be read "
            "(the statement time above is its upper bound)"
        )
    return PipelineRow(
        label,
        len(arrivals) / max(last - since, 1e-6),
        statistics.median(latencies),
        p99,
        note,
        drained.worker_cpu_ms,
        database_cpu_ms,
    )
