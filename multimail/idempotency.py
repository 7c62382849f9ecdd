"""The ``Idempotency-Key`` store: claim a key before the request runs, keep its answer.

A claim is an INSERT against a unique (scope, key) constraint, so of any number of
concurrent requests with one key exactly one runs; the others find its row and answer a
conflict (still running, or another body) or replay the stored answer. Everything after
the claim is a compare-and-set on the claim's ``claimed_at``, so a request that lost its
claim (taken over after the lease) never overwrites the one that holds it now.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from multimail.models import IdempotencyRecord

State = IdempotencyRecord.State


@dataclass(frozen=True, slots=True)
class Claim:
    """``record`` is ours to run when ``claimed``; otherwise it is the other request's."""

    record: IdempotencyRecord
    claimed: bool


def _ttl() -> timedelta:
    return timedelta(seconds=settings.IDEMPOTENCY_TTL_SECONDS)


def _lease() -> timedelta:
    return timedelta(seconds=settings.IDEMPOTENCY_IN_FLIGHT_SECONDS)


def idempotency_hashes(*, credential: str, key: str) -> tuple[str, str]:
    return hashlib.sha256(credential.encode()).hexdigest(), hashlib.sha256(key.encode()).hexdigest()


def idempotency_claim(*, scope: str, key_hash: str, fingerprint: str) -> Claim:
    """Claim the key for this request, or return the record that already holds it."""
    for _ in range(3):  # a row deleted or expired between our insert and our read: again
        now = timezone.now()
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    scope=scope,
                    key_hash=key_hash,
                    fingerprint=fingerprint,
                    created_at=now,
                    claimed_at=now,
                )
            return Claim(record=record, claimed=True)
        except IntegrityError:
            existing = IdempotencyRecord.objects.filter(scope=scope, key_hash=key_hash).first()
        if existing is None:
            continue
        if not _may_take_over(existing, fingerprint=fingerprint, now=now):
            return Claim(record=existing, claimed=False)
        taken = IdempotencyRecord.objects.filter(
            pk=existing.pk, claimed_at=existing.claimed_at
        ).update(
            fingerprint=fingerprint,
            state=State.IN_FLIGHT,
            created_at=now,
            claimed_at=now,
            response_status=None,
            response_body="",
            response_content_type="",
        )
        if taken:
            existing.refresh_from_db()
            return Claim(record=existing, claimed=True)
    raise RuntimeError("Idempotency-Key claim kept changing under us")


def _may_take_over(record: IdempotencyRecord, *, fingerprint: str, now: datetime) -> bool:
    if record.created_at < now - _ttl():
        return True  # expired: the key starts a new life, whatever its old body was
    # A claim past its lease belongs to a request whose process died before answering:
    # the same request may run again. Another body stays a conflict.
    return (
        record.state == State.IN_FLIGHT
        and record.fingerprint == fingerprint
        and record.claimed_at < now - _lease()
    )


def idempotency_complete(*, claim: Claim, status: int, body: str, content_type: str) -> None:
    """Store the answer to replay; a no-op if the claim was taken over meanwhile."""
    IdempotencyRecord.objects.filter(
        pk=claim.record.pk, claimed_at=claim.record.claimed_at, state=State.IN_FLIGHT
    ).update(
        state=State.DONE,
        response_status=status,
        response_body=body,
        response_content_type=content_type,
    )


def idempotency_release(*, claim: Claim) -> None:
    """Free the key after an answer not worth keeping (server error, rate limit), so the
    client can retry with it."""
    IdempotencyRecord.objects.filter(
        pk=claim.record.pk, claimed_at=claim.record.claimed_at, state=State.IN_FLIGHT
    ).delete()


def idempotency_records_purge() -> int:
    """Delete records past the 24 h window (periodic): replays only ever read newer ones."""
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=timezone.now() - _ttl()).delete()
    return deleted
