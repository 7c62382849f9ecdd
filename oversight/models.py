"""Hosted approval links, and the emails that tell the operator about a held or failed email."""

from __future__ import annotations

from datetime import datetime

from django.db import models
from django.utils import timezone

from accounts.models import Account
from mailboxes.models import Email
from multimail.ids import new_id


class ApprovalLink(models.Model):
    """One link per announcement of a held email, emailed to the operator.

    Only the SHA-256 of the token is stored, so a database leak yields no working link. The
    token is the whole authority of the page (no session, no API key): it is 256 random bits,
    works for one email only, expires, and is spent as soon as the email is decided by any
    path (API, console or the link itself). An edit to the held email replaces the link
    (``replaced_by``): the operator is told again, and the old link decides nothing.
    """

    id = models.CharField(primary_key=True, max_length=26, default=new_id, editable=False)
    email = models.ForeignKey(Email, on_delete=models.CASCADE, related_name="approval_links")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    replaced_at = models.DateTimeField(null=True, blank=True)
    replaced_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replaces"
    )

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"approval link for {self.email_id}"

    def is_usable(self, *, now: datetime) -> bool:
        return self.used_at is None and self.replaced_at is None and self.expires_at > now


class OperatorNotification(models.Model):
    """One email to the operator about one email: it waits for a decision, it changed while
    waiting, or it could not be sent.

    Stored before it is sent, so a send that fails is retried (the task, then the beat
    sweep, with growing delays) and the console can show that the operator was not told.
    An approval request's token is made when the email is sent (``ApprovalLink``): a retry
    mails a fresh one, and the token of an attempt that failed never works.
    """

    class Kind(models.TextChoices):
        APPROVAL_REQUEST = "approval_request", "Waiting for approval"
        EMAIL_CHANGED = "email_changed", "Changed while waiting for approval"
        SEND_FAILED = "send_failed", "Could not be sent"
        # Half of the account's approval_expiry_hours passed: sent once per email.
        EXPIRY_REMINDER = "expiry_reminder", "Reminder: expires soon"

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to be sent"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        # Not needed any more before it could go out: decided, or changed again.
        SKIPPED = "skipped", "Skipped"

    id = models.CharField(primary_key=True, max_length=26, default=new_id, editable=False)
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="operator_notifications"
    )
    email = models.ForeignKey(Email, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    link = models.OneToOneField(
        ApprovalLink, null=True, blank=True, on_delete=models.CASCADE, related_name="notification"
    )
    # For an edit: the labels of what changed ("To", "Subject", ...), as the subject says.
    changed = models.JSONField(default=list, blank=True)
    subject = models.CharField(max_length=998, blank=True, default="")
    recipient = models.CharField(max_length=320, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True, default="")
    next_attempt_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="notification_due",
                condition=models.Q(status="pending"),
            ),
            models.Index(fields=["email", "-id"]),
            # The console queue's fingerprint reads an account's newest notification.
            models.Index(fields=["account", "-id"]),
        ]
        constraints = [
            # One reminder per held email, however many times the periodic job runs.
            models.UniqueConstraint(
                fields=["email"],
                name="notification_one_expiry_reminder",
                condition=models.Q(kind="expiry_reminder"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} notification for {self.email_id} ({self.status})"

    @property
    def not_delivered(self) -> bool:
        """The operator may not have been told: it failed, or is being retried."""
        return self.status == self.Status.FAILED or (
            self.status == self.Status.PENDING and self.attempts > 0
        )
