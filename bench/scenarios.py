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
    free_port,
)

BROKER_DB = 13
WEBHOOK_SECRET = "bench:inbound-secret"
BULK_EMAILS = int(os.environ.get("BENCH_BULK_EMAILS", "1000000"))
PENDING_EMAILS = 10_000
# Decide is one-shot per email: every request of a phase needs its own pending email.
DECIDE_POOL_PER_PHASE = 60_000
DEEP_OFFSET = 900_000
E2E_DRAIN_TIMEOUT = 240
# Sends of one account queue on its row lock (exact quotas); other accounts' do not.
SEND_TENANTS = 8

_django_ready = False


def broker_url() -> str:
    redis_url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    return redis_url.rsplit("/", 1)[0] + f"/{BROKER_DB}"


def register() -> list[Scenario]:
    os.environ.setdefault("CELERY_BROKER_URL", broker_url())
    os.environ.setdefault("POSTMARK_WEBHOOK_SECRET", WEBHOOK_SECRET)
    return [
        Scenario("POST send (accept+queue)", send_target, prepare=send_prepare),
        Scenario(
            f"POST send, {SEND_TENANTS} accounts", send_tenants_target, prepare=send_tenants_prepare
        ),
        Scenario("POST postmark-inbound", inbound_target, prepare=inbound_prepare),
        Scenario("GET emails, first page", list_first_target, prepare=bulk_prepare),
        Scenario("GET emails, cursor 900k", list_deep_target, prepare=bulk_prepare),
        Scenario("GET one email", read_one_target, prepare=bulk_prepare),
        Scenario("GET emails, search 1M", search_target, prepare=bulk_prepare),
        Scenario("GET oversight/pending 10k", pending_target, prepare=pending_prepare),
        Scenario("POST oversight/decide", decide_target, prepare=decide_prepare),
        Scenario("send -> SMTP sink (e2e)", e2e_target, prepare=e2e_prepare, report=e2e_report),
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
        f"SELECT {', '.join(expressions)} FROM generate_series(%s, %s) AS g(n)"
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
    """An SMTP server on loopback that only notes when each message arrived."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's per-command log
        self.arrivals: dict[str, float] = {}
        self.lock = threading.Lock()
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                # A Message-ID short enough to fit on a continuation line is folded there
                # ("Message-ID:\r\n <id>", valid RFC 5322): compare it unfolded.
                message_id = str(message_from_bytes(envelope.content)["Message-ID"] or "").strip()
                with sink.lock:
                    sink.arrivals.setdefault(message_id, time.time())
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


def e2e_prepare(ctx: Context) -> None:
    _django()
    import redis

    # Tasks the other scenarios left queued would be drained first and skew the figure.
    broker = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"])
    # (Scans queue at a lower priority, under "celery" plus a priority suffix.)
    for pattern in ("celery*", "unacked*", "_kombu.*"):
        for key in broker.scan_iter(pattern):
            broker.delete(key)
    account, mailbox = _tenant(f"bench-e2e-{time.strftime('%m%d%H%M%S')}", mode="autonomous")
    sink = _Sink()
    (ROOT / "var").mkdir(exist_ok=True)  # absent on a fresh checkout that never ran the service
    log = open(ROOT / "var" / "bench-worker.log", "w")  # noqa: SIM115 (lives with the worker)
    worker = subprocess.Popen(  # noqa: S603 (fixed argv, no shell)
        [
            PYTHON, "-m", "celery", "-A", "multimail", "worker", "--loglevel", "WARNING",
            "--concurrency", "2", "--without-gossip", "--without-mingle", "--without-heartbeat",
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
    time.sleep(5)  # let the worker connect before the clock starts
    ctx.extra["e2e"] = {
        "mailbox": mailbox.pk,
        "key": _key(account, "send"),
        "sink": sink,
        "worker": worker,
        "started": time.time(),
    }
    _done_with_db()


def e2e_target(ctx: Context) -> Target:
    e2e = ctx.extra["e2e"]
    body = {"to": ["lead@example.org"], "subject": "Offer {n}", "markdown": "Terms for **{n}**."}
    return Target(
        "POST",
        f"/v1/mailboxes/{e2e['mailbox']}/send",
        {"Authorization": f"Bearer {e2e['key']}"},
        json.dumps(body).encode(),
        expect_status=202,
    )


def e2e_report(ctx: Context) -> str:
    """Wait until the worker has handed every accepted email to the sink, then summarise."""
    from django.db.models import Count

    from mailboxes.models import Email

    e2e = ctx.extra["e2e"]
    sink: _Sink = e2e["sink"]
    worker: subprocess.Popen[bytes] = e2e["worker"]
    try:
        # Requests still queued in the server may be accepted after the load stopped: done
        # once every accepted email reached the sink and no new one came for 2 s.
        deadline = time.monotonic() + E2E_DRAIN_TIMEOUT
        accepted: dict[str, Any] = {}
        settled = 0
        while time.monotonic() < deadline and settled < 4:
            time.sleep(0.5)
            now_accepted = dict(
                Email.objects.filter(mailbox_id=e2e["mailbox"]).values_list(
                    "message_id", "received_at"
                )
            )
            with sink.lock:
                drained = all(mid in sink.arrivals for mid in now_accepted)
            settled = settled + 1 if drained and len(now_accepted) == len(accepted) else 0
            accepted = now_accepted
        statuses = dict(
            Email.objects.filter(mailbox_id=e2e["mailbox"])
            .values_list("status")
            .annotate(n=Count("id"))
            .order_by()
        )
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
        sink.stop()
        _done_with_db()
    arrivals = sink.arrivals
    delivered = [mid for mid in accepted if mid in arrivals]
    if not delivered:
        return f"end-to-end: nothing reached the SMTP sink (statuses {statuses})"
    first = min(accepted[mid].timestamp() for mid in accepted)
    last = max(arrivals[mid] for mid in delivered)
    latencies = sorted((arrivals[mid] - accepted[mid].timestamp()) * 1000 for mid in delivered)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return (
        f"end-to-end outbound (send -> worker x2 -> SMTP sink on loopback): "
        f"{len(delivered)}/{len(accepted)} delivered, "
        f"{len(delivered) / max(last - first, 1e-6):.0f} emails/s sustained "
        f"(first accept to last hand-off {last - first:.1f} s), accept-to-sink latency "
        f"p50 {statistics.median(latencies):.0f} ms, p99 {p99:.0f} ms; statuses {statuses}"
    )
