"""The worker's delivery path, held to its properties (never timed: bench/drain.py times
it): a bounded number of statements per email, one SMTP connection reused from email to
email, no row lock held while the relay works, and deliveries served before a backlog of
scans."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from aiosmtpd.controller import Controller
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mailboxes.models import Email, EmailStatus
from mailboxes.services.outbound import pipeline, provider
from tests.conftest import Tenant, database_dsn, make_tenant
from tests.outbound.conftest import body, worker_broker_url
from tests.reliability.conftest import free_port

# Today's counts: a change that adds a statement to every email must say so here. The scan
# reads the email, locks the sender, writes the scan with the move to sending (the email's
# lock and its compare-and-set, which claims the delivery too) and the storage counter.
# Delivery reads the local recipients, then records the email sent with the usage counter
# (the first email of the day inserts its row: two more statements), the event and the
# webhook targets. An email without attachments reads none.
PROCESS_STATEMENTS = 4
DELIVER_STATEMENTS = 7


@dataclass
class Relay:
    """An aiosmtpd relay on loopback that notes connections, commands and messages, and can
    be made to hold a message's DATA until ``release``."""

    port: int = field(default_factory=free_port)
    peers: list[Any] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    messages: list[bytes] = field(default_factory=list)
    hold: threading.Event | None = None
    in_data: threading.Event = field(default_factory=threading.Event)
    controller: Controller | None = None

    def start(self) -> None:
        relay = self

        class Handler:
            async def handle_EHLO(
                self, server: Any, session: Any, envelope: Any, hostname: str, responses: Any
            ) -> Any:
                session.host_name = hostname  # aiosmtpd leaves this to an EHLO hook
                relay.peers.append(session.peer)
                relay.commands.append("EHLO")
                return responses

            async def handle_RSET(self, server: Any, session: Any, envelope: Any) -> str:
                relay.commands.append("RSET")
                return "250 OK"

            async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
                relay.commands.append("QUIT")
                return "221 Bye"

            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                relay.commands.append("DATA")
                relay.in_data.set()
                if relay.hold is not None:
                    await asyncio.get_running_loop().run_in_executor(None, relay.hold.wait, 20)
                relay.messages.append(envelope.content)
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def relay(settings: Any) -> Iterator[Relay]:
    """The default mailer is the SMTP relay backend, pointed at a local aiosmtpd."""
    server = Relay()
    server.start()
    settings.MAILERS = {
        "default": {
            "BACKEND": "mailboxes.backends.SMTPRelayBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": server.port, "timeout": 10},
        }
    }
    try:
        yield server
    finally:
        provider.mailer_close()
        server.stop()


def _queued(sender: Any, owner: Tenant, captured: Any, n: int = 0) -> str:
    """Accept a send without running its tasks: the email waits in pending_scan."""
    with captured(execute=False):
        response = sender.post(
            f"/v1/mailboxes/{owner.mailbox.pk}/send",
            body(subject=f"Offer {n}", markdown=f"Terms **{n}**."),
            format="json",
        )
    assert response.status_code == 202, response.content
    return str(response.json()["id"])


@pytest.mark.django_db
def test_statements_per_email_are_bounded(
    relay: Relay, sender: Any, owner: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    email_id = _queued(sender, owner, django_capture_on_commit_callbacks)
    with CaptureQueriesContext(connection) as scan:
        claimed = pipeline.email_process(email_id=email_id, deliver_here=True)
    assert claimed is not None
    with CaptureQueriesContext(connection) as delivery:
        pipeline.email_deliver_claimed(email=claimed)
    assert Email.objects.get(pk=email_id).status == EmailStatus.SENT
    assert len(relay.messages) == 1
    # Savepoints are the test's own transaction showing through, not round trips a worker
    # makes (there each step is its own transaction).
    statements = [
        q["sql"] for q in delivery.captured_queries if "SAVEPOINT" not in q["sql"].upper()
    ]
    scanned = [q["sql"] for q in scan.captured_queries if "SAVEPOINT" not in q["sql"].upper()]
    assert len(scanned) <= PROCESS_STATEMENTS, "\n".join(scanned)
    assert len(statements) <= DELIVER_STATEMENTS, "\n".join(statements)


@pytest.mark.django_db
def test_one_smtp_connection_carries_every_email(
    relay: Relay, send: Callable[..., Any], owner: Tenant
) -> None:
    for n in range(5):
        assert send(subject=f"Offer {n}", markdown=f"Terms {n}.").status_code == 202
    assert Email.objects.filter(status=EmailStatus.SENT).count() == 5
    assert len(relay.messages) == 5
    assert len(relay.peers) == 1, relay.peers  # one connect and EHLO for all five
    # Each later message starts with a RSET on the kept session; the message is
    # flattened once, with the wire's line endings.
    assert relay.commands.count("RSET") == 4
    assert all(b"\r\n" in message and b"\n\n" not in message for message in relay.messages)
    provider.mailer_close()
    assert relay.commands[-1] == "QUIT"


@pytest.mark.django_db
def test_a_dropped_connection_is_replaced_before_sending(
    relay: Relay, send: Callable[..., Any]
) -> None:
    assert send(subject="First").status_code == 202
    # The relay goes away and comes back (a restart, an idle timeout): the kept session is
    # dead, which the RSET before the next message finds out before anything is sent.
    relay.stop()
    relay.start()
    assert send(subject="Second").status_code == 202
    assert Email.objects.filter(status=EmailStatus.SENT).count() == 2
    assert len(relay.peers) == 2
    assert len(relay.messages) == 2


@pytest.mark.django_db(transaction=True)
def test_no_row_lock_is_held_while_the_relay_works(relay: Relay) -> None:
    """While the relay sits on the message's DATA, another connection may lock the email,
    its mailbox and its account at once (NOWAIT): the delivery holds none of them."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's")
    tenant = make_tenant("lockfree")
    from accounts.actors import Actor
    from mailboxes.services.outbound.accept import email_accept

    accepted = email_accept(
        actor=Actor.system(tenant.account),
        mailbox_id=tenant.mailbox.pk,
        to=["client@example.org"],
        subject="Held at DATA",
        markdown="Hello.",
    )
    email_id = accepted.email.pk
    # Without a broker the accept's commit ran the tasks already: the email is sent. It is
    # put back where a worker finds it, and this test's delivery is the one timed.
    Email.objects.filter(pk=email_id).update(
        status=EmailStatus.PENDING_SCAN, sent_at=None, provider_message_id=""
    )
    relay.messages.clear()
    relay.in_data.clear()
    claimed = pipeline.email_process(email_id=email_id, deliver_here=True)
    assert claimed is not None
    relay.hold = threading.Event()
    errors: list[BaseException] = []

    def deliver() -> None:
        try:
            pipeline.email_deliver_claimed(email=claimed)
        except BaseException as error:  # reported by the test below
            errors.append(error)
        finally:
            from django.db import connections

            connections.close_all()

    worker = threading.Thread(target=deliver)
    worker.start()
    try:
        assert relay.in_data.wait(20), "the delivery never reached DATA"
        with psycopg.connect(database_dsn()) as other:
            for table, pk in (
                ("mailboxes_email", email_id),
                ("mailboxes_mailbox", tenant.mailbox.pk),
                ("accounts_account", tenant.account.pk),
            ):
                row = other.execute(
                    f"SELECT id FROM {table} WHERE id = %s FOR UPDATE NOWAIT",
                    [pk],
                ).fetchone()
                assert row is not None, table
            other.rollback()
    finally:
        relay.hold.set()
        worker.join(30)
    assert not errors, errors
    assert Email.objects.get(pk=email_id).status == EmailStatus.SENT
    assert len(relay.messages) == 1


@pytest.mark.django_db
def test_deliveries_are_served_before_a_backlog_of_scans(settings: Any) -> None:
    """A deliver task queued behind fifty scans is the next one a worker takes: scans go
    at a lower priority (CELERY_TASK_ROUTES)."""
    import redis
    from kombu import Connection

    from mailboxes import tasks
    from multimail.celery import app

    broker = worker_broker_url()
    redis.Redis.from_url(broker).flushdb()
    previous = app.conf.broker_url, app.conf.task_always_eager
    app.conf.broker_url, app.conf.task_always_eager = broker, False
    try:
        with app.connection_for_write(broker) as producer_connection:
            for n in range(50):
                tasks.process_email.apply_async((f"scan-{n}",), connection=producer_connection)
            tasks.deliver_email.apply_async(("approved",), connection=producer_connection)
        with Connection(broker) as consumer:
            message = consumer.default_channel.basic_get("celery")
            assert message is not None
            assert message.headers["task"] == "mailboxes.tasks.deliver_email"
            assert json.loads(message.body)[0] == ["approved"]
    finally:
        app.conf.broker_url, app.conf.task_always_eager = previous
        redis.Redis.from_url(broker).flushdb()


@pytest.mark.django_db
def test_a_claimed_email_is_left_alone_until_its_claim_runs_out(
    relay: Relay, sender: Any, owner: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    """Another delivery has it (a redelivered task, the sweep's): nothing is sent twice. A
    claim past its lease is a dead worker's, and the next delivery sends the email."""
    from datetime import timedelta

    from django.utils import timezone

    email_id = _queued(sender, owner, django_capture_on_commit_callbacks)
    assert pipeline.email_process(email_id=email_id, deliver_here=True)
    Email.objects.filter(pk=email_id).update(delivery_claimed_at=timezone.now())
    pipeline.email_deliver(email_id=email_id)
    assert relay.messages == []
    assert Email.objects.get(pk=email_id).status == EmailStatus.SENDING
    Email.objects.filter(pk=email_id).update(
        delivery_claimed_at=timezone.now() - timedelta(minutes=5)
    )
    pipeline.email_deliver(email_id=email_id)
    email = Email.objects.get(pk=email_id)
    assert (email.status, email.delivery_claimed_at, email.send_attempts) == (
        EmailStatus.SENT,
        None,
        1,
    )
    assert len(relay.messages) == 1
