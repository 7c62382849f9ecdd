from __future__ import annotations

from django.db import models

from accounts.models import Account


class UsageEventType(models.TextChoices):
    EMAILS_SENT = "emails_sent", "Emails sent"
    EMAILS_RECEIVED = "emails_received", "Emails received"
    API_CALLS = "api_calls", "API calls"
    OVERSIGHT_ACTIONS = "oversight_actions", "Oversight actions"


class UsageDaily(models.Model):
    """Usage counted per account, day and event type: one row a day, incremented in place,
    so recording usage never grows the table by a row per event."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="usage_days")
    date = models.DateField()
    event_type = models.CharField(max_length=32, choices=UsageEventType.choices)
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "date", "event_type"], name="usage_daily_unique"
            ),
        ]
        verbose_name_plural = "usage days"
