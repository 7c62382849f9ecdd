"""The live event stream (``GET /v1/events``): which events a stream gets, in which order,
from where it resumes, and how many streams a key may hold open.

Events are the rows ``emit_event`` writes beside the webhook deliveries, in the same
transaction as the change they describe. A row is numbered (``seq``, the SSE event id) only
once it is committed, by ``events_sequence`` under the account's counter lock: a stream
that has read up to N cannot later find a row committed with a number below N, which a
number taken at insert time (a sequence) would allow when two transactions commit out of
order. The mail paths never wait on that lock; only the streams (and the purge) take it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from accounts.models import AccountState, ApiKey
from mailboxes.models import AccountEvent, AccountEventSequence, Mailbox, WebhookEvent
from multimail.authentication import ApiPrincipal
from multimail.errors import ApiError, not_found
from multimail.permissions import principal_require_scope

# Rows numbered per transaction; a backlog larger than this takes a few short ones.
SEQUENCE_BATCH = 1000
# Events sent per poll; a stream behind by more catches up over the next polls.
PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class StreamParams:
    account_id: str
    key_id: str
    mailbox_id: str | None
    types: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StreamEvent:
    seq: int
    event_type: str
    body: dict[str, Any]


def stream_params(
    *,
    principal: ApiPrincipal,
    mailbox_id: str | None,
    types: list[str],
    last_event_id: str | None,
) -> tuple[StreamParams, int | None]:
    """Checks a stream request (read scope, then its parameters) before anything is held
    open; returns the stream's filters and the ``Last-Event-ID`` it resumes after."""
    principal_require_scope(principal, "read")
    allowed = set(WebhookEvent.values)
    unknown = [name for name in types if name not in allowed]
    if unknown:
        raise ApiError(
            "invalid_parameter",
            f"Unknown event type {unknown[0]!r}. Use any of: {', '.join(WebhookEvent.values)}.",
            param="type",
        )
    resume_after: int | None = None
    if last_event_id is not None and last_event_id.strip():
        text = last_event_id.strip()
        if not text.isascii() or not text.isdigit() or len(text) > 19:
            raise ApiError(
                "invalid_parameter",
                "Last-Event-ID must be the id of an event this stream sent (a whole number).",
                param="Last-Event-ID",
            )
        resume_after = int(text)
    account = principal.account
    if mailbox_id is not None and not (
        Mailbox.objects.filter(account=account, pk=mailbox_id, deleted_at__isnull=True).exists()
    ):
        raise not_found("mailbox")
    params = StreamParams(
        account_id=account.pk,
        key_id=principal.api_key.pk,
        mailbox_id=mailbox_id,
        types=tuple(dict.fromkeys(types)),
    )
    return params, resume_after


def events_sequence(*, account_id: str) -> int:
    """Number the account's committed, unnumbered events in id order; returns the account's
    last number. Short transactions that touch only the event rows and the counter, and
    none at all when nothing waits for a number: an idle stream's poll only reads (on
    SQLite, where every write transaction takes the one write lock, that matters most)."""
    if not AccountEvent.objects.filter(account_id=account_id, seq__isnull=True).exists():
        last = AccountEventSequence.objects.filter(account_id=account_id).values_list(
            "last_seq", flat=True
        )
        return last.first() or 0
    while True:
        with transaction.atomic():
            AccountEventSequence.objects.bulk_create(
                [AccountEventSequence(account_id=account_id)], ignore_conflicts=True
            )
            counter = AccountEventSequence.objects.select_for_update().get(account_id=account_id)
            # Read after the lock: rows another stream numbered meanwhile are not seen here.
            batch = list(
                AccountEvent.objects.filter(account_id=account_id, seq__isnull=True)
                .order_by("id")
                .only("id")[:SEQUENCE_BATCH]
            )
            if not batch:
                return counter.last_seq
            for number, event in enumerate(batch, start=counter.last_seq + 1):
                event.seq = number
            AccountEvent.objects.bulk_update(batch, ["seq"])
            counter.last_seq += len(batch)
            counter.save(update_fields=["last_seq"])
            if len(batch) < SEQUENCE_BATCH:
                return counter.last_seq


def stream_start(*, params: StreamParams, resume_after: int | None) -> int:
    """Where a stream starts: after ``Last-Event-ID``, else after the newest event (a new
    stream carries what happens from now on). An id beyond the newest (another account's,
    or from before a restore) starts from the newest."""
    newest = events_sequence(account_id=params.account_id)
    return newest if resume_after is None else min(resume_after, newest)


def events_after(*, params: StreamParams, after: int) -> tuple[list[StreamEvent], int]:
    """The stream's next events after ``after``, and the position to poll from next: past
    events the filters skipped too, so they are not scanned again."""
    newest = events_sequence(account_id=params.account_id)
    if newest <= after:
        return [], after
    rows = AccountEvent.objects.filter(account_id=params.account_id, seq__gt=after, seq__lte=newest)
    if params.mailbox_id is not None:
        rows = rows.filter(mailbox_id=params.mailbox_id)
    if params.types:
        rows = rows.filter(event_type__in=params.types)
    page = rows.order_by("seq").values_list("seq", "event_type", "payload", "created_at")[
        :PAGE_SIZE
    ]
    events = [
        StreamEvent(
            seq=cast(int, seq),  # numbered: seq__gt leaves out the rows without a number
            event_type=event_type,
            # As a webhook delivery's body: the payload and when the event happened.
            body={**payload, "created_at": created_at.isoformat()},
        )
        for seq, event_type, payload, created_at in page
    ]
    reached = events[-1].seq if len(events) == PAGE_SIZE else newest
    return events, reached


def _slot_key(key_id: str, slot: int) -> str:
    return f"events:stream:{key_id}:{slot}"


def slot_ttl_seconds() -> int:
    """A slot outlives a few missed heartbeats; a crashed process's slots expire after it."""
    return max(30, int(settings.EVENTS_HEARTBEAT_SECONDS * 3))


@dataclass(frozen=True, slots=True)
class StreamSlot:
    cache_key: str
    token: str


def stream_slot_acquire(*, key_id: str) -> StreamSlot:
    """One of the key's ``EVENTS_STREAMS_PER_KEY`` slots in the shared cache, held while
    the stream is open (refreshed with each heartbeat, released on disconnect)."""
    token = secrets.token_hex(8)
    limit = settings.EVENTS_STREAMS_PER_KEY
    for slot in range(limit):
        if cache.add(_slot_key(key_id, slot), token, slot_ttl_seconds()):
            return StreamSlot(cache_key=_slot_key(key_id, slot), token=token)
    raise ApiError(
        "rate_limit_exceeded",
        f"This key already holds {limit} open event streams, the most it may. Close one "
        "(or wait for a dropped one to expire) and connect again.",
        limit_type="event_streams",
    )


def stream_slot_refresh(slot: StreamSlot) -> None:
    # A slot that expired during a stall is taken back when it is still free.
    if not cache.touch(slot.cache_key, slot_ttl_seconds()):
        cache.add(slot.cache_key, slot.token, slot_ttl_seconds())


def stream_slot_release(slot: StreamSlot) -> None:
    if cache.get(slot.cache_key) == slot.token:
        cache.delete(slot.cache_key)


def stream_key_valid(*, key_id: str) -> bool:
    """An open stream ends when its key is revoked or its account leaves ``active``."""
    return ApiKey.objects.filter(
        pk=key_id, is_active=True, account__state=AccountState.ACTIVE
    ).exists()


def events_purge() -> int:
    """Beat: events past ``EVENTS_RETENTION_HOURS``. The counters stay, so numbering
    continues where it was."""
    cutoff = timezone.now() - timedelta(hours=settings.EVENTS_RETENTION_HOURS)
    deleted, _ = AccountEvent.objects.filter(created_at__lt=cutoff).delete()
    return deleted
