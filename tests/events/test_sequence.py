"""The event log behind the stream: numbers follow commit order (an event committed late
is never numbered below one a stream already read), a poll costs the same few queries
however many events it carries, and the purge keeps the numbering going. And the per-key
bound: a slot its process never released expires."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from mailboxes.events import emit_event
from mailboxes.models import AccountEvent, WebhookEvent
from mailboxes.services import event_stream
from mailboxes.services.event_stream import (
    StreamParams,
    events_after,
    events_purge,
    events_sequence,
    stream_start,
)
from multimail.errors import ApiError
from tests.conftest import Tenant


def _params(tenant: Tenant) -> StreamParams:
    return StreamParams(account_id=tenant.account.pk, key_id="-", mailbox_id=None, types=())


def _emit(tenant: Tenant, label: str) -> None:
    emit_event(
        account=tenant.account,
        event_type=WebhookEvent.MESSAGE_RECEIVED,
        mailbox=tenant.mailbox,
        data={"label": label},
    )


def _labels(events: list[Any]) -> list[str]:
    return [event.body["data"]["label"] for event in events]


@pytest.mark.django_db(transaction=True)
def test_an_event_committed_late_is_numbered_after_those_already_read(owner: Tenant) -> None:
    params = _params(owner)
    start = stream_start(params=params, resume_after=None)
    inserted, release = threading.Event(), threading.Event()

    def slow_transaction() -> None:
        try:
            with transaction.atomic():
                _emit(owner, "slow")  # inserted first, committed last
                inserted.set()
                release.wait(10)
        finally:
            connections.close_all()

    worker = threading.Thread(target=slow_transaction)
    worker.start()
    assert inserted.wait(10)
    _emit(owner, "fast")
    read, after = events_after(params=params, after=start)
    assert _labels(read) == ["fast"]
    release.set()
    worker.join(10)
    late, _ = events_after(params=params, after=after)
    assert _labels(late) == ["slow"]
    assert late[0].seq == read[0].seq + 1


@pytest.mark.django_db
@pytest.mark.parametrize("count", [3, 30])
def test_a_poll_costs_the_same_queries_however_many_events(owner: Tenant, count: int) -> None:
    params = _params(owner)
    for n in range(count):
        _emit(owner, str(n))
    with CaptureQueriesContext(connection) as queries:
        events, _ = events_after(params=params, after=0)
    assert len(events) == count
    # Counter row, its lock, the unnumbered rows, their numbers, the counter, the page;
    # plus the savepoint of the numbering transaction.
    assert len(queries) <= 9, [query["sql"] for query in queries]


@pytest.mark.django_db
def test_the_purge_drops_old_events_and_numbering_continues(owner: Tenant, settings: Any) -> None:
    settings.EVENTS_RETENTION_HOURS = 72
    _emit(owner, "old")
    _emit(owner, "recent")
    assert events_sequence(account_id=owner.account.pk) == 2
    AccountEvent.objects.filter(seq=1).update(created_at=timezone.now() - timedelta(hours=73))
    assert events_purge() == 1
    _emit(owner, "new")
    events, _ = events_after(params=_params(owner), after=0)
    assert [(event.seq, event.body["data"]["label"]) for event in events] == [
        (2, "recent"),
        (3, "new"),
    ]


@pytest.mark.django_db
def test_a_slot_left_by_a_dead_process_expires(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.EVENTS_STREAMS_PER_KEY = 1
    monkeypatch.setattr(event_stream, "slot_ttl_seconds", lambda: 1)
    event_stream.stream_slot_acquire(key_id="key")  # never released: its process died
    with pytest.raises(ApiError) as refused:
        event_stream.stream_slot_acquire(key_id="key")
    assert refused.value.code == "rate_limit_exceeded"
    time.sleep(1.5)
    event_stream.stream_slot_release(event_stream.stream_slot_acquire(key_id="key"))
