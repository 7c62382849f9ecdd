"""Hosted approval links: the operator decides a held email from the notification email."""

from __future__ import annotations

from datetime import datetime

from django.db import models
from django.utils import timezone

from mailboxes.models import Email
from multimail.ids import new_id


class ApprovalLink(models.Model):
    """One link per held email, emailed to the operator.

    Only the SHA-256 of the token is stored, so a database leak yields no working link. The
    token is the whole authority of the page (no session, no API key): it is 256 random bits,
    works for one email only, expires, and is spent as soon as the email is decided by any
    path (API, console or the link itself).
    """

    id = models.CharField(primary_key=True, max_length=26, default=new_id, editable=False)
    email = models.ForeignKey(Email, on_delete=models.CASCADE, related_name="approval_links")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"approval link for {self.email_id}"

    def is_usable(self, *, now: datetime) -> bool:
        return self.used_at is None and self.expires_at > now
