"""Core records every process must agree on: idempotency claims and periodic-job runs."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class IdempotencyRecord(models.Model):
    """One ``Idempotency-Key`` of one credential: claimed while its request runs, then the
    stored answer. Kept in the database (not a cache) so it survives restarts, is shared by
    every web process, and the unique constraint decides which of two racing requests runs.
    """

    class State(models.TextChoices):
        IN_FLIGHT = "in_flight", "In flight"
        DONE = "done", "Done"

    # sha256 of the credential (or client address) and of the key: neither is stored raw.
    scope = models.CharField(max_length=64)
    key_hash = models.CharField(max_length=64)
    # sha256 of method, path and body: the same key with another body is a conflict.
    fingerprint = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=State.choices, default=State.IN_FLIGHT)
    created_at = models.DateTimeField(default=timezone.now)
    # When the running request claimed the key; a claim older than the lease is taken over
    # (its process died before answering).
    claimed_at = models.DateTimeField(default=timezone.now)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True, default="")
    response_content_type = models.CharField(max_length=128, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "key_hash"], name="idempotency_unique_key")
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_idx")]

    def __str__(self) -> str:
        return f"{self.scope[:8]}:{self.key_hash[:8]} {self.state}"


class PeriodicJobRun(models.Model):
    """The last run of each periodic job (beat or ``manage.py scheduler``), for /metrics:
    written by whichever process ran it, read by every web process."""

    name = models.CharField(max_length=200, primary_key=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    succeeded = models.BooleanField(default=False)

    def __str__(self) -> str:
        return self.name
