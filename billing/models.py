from __future__ import annotations

from django.db import models
from django.utils import timezone

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


class BillingInterval(models.TextChoices):
    MONTHLY = "monthly", "Monthly"
    ANNUAL = "annual", "Annual"


class SubscriptionStatus(models.TextChoices):
    """Stripe's subscription statuses, plus ``none`` before any checkout completed."""

    NONE = "none", "No subscription"
    INCOMPLETE = "incomplete", "Incomplete"
    INCOMPLETE_EXPIRED = "incomplete_expired", "Incomplete, expired"
    TRIALING = "trialing", "Trialing"
    ACTIVE = "active", "Active"
    PAST_DUE = "past_due", "Past due"
    UNPAID = "unpaid", "Unpaid"
    CANCELED = "canceled", "Canceled"
    PAUSED = "paused", "Paused"


# Statuses in which the paid plan is in force (past_due: the grace period runs).
LIVE_STATUSES = (
    SubscriptionStatus.ACTIVE,
    SubscriptionStatus.TRIALING,
    SubscriptionStatus.PAST_DUE,
)


class Subscription(models.Model):
    """The account's Stripe customer and subscription, as last told by Stripe.

    ``last_event_created`` and ``last_payment_event_created`` (Stripe's epoch seconds) make
    webhook handling order-independent: an event older than the state already applied is
    recorded but ignored. Subscription events and invoice events are ordered separately
    because Stripe interleaves them legitimately.
    """

    account = models.OneToOneField(Account, on_delete=models.CASCADE, related_name="subscription")
    stripe_customer_id = models.CharField(max_length=255, blank=True, default="", db_index=True)
    stripe_subscription_id = models.CharField(max_length=255, blank=True, default="", db_index=True)
    plan = models.CharField(max_length=16, default="starter")
    interval = models.CharField(
        max_length=16, choices=BillingInterval.choices, default=BillingInterval.MONTHLY
    )
    status = models.CharField(
        max_length=24, choices=SubscriptionStatus.choices, default=SubscriptionStatus.NONE
    )
    current_period_start = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    # When the first unpaid invoice failed; cleared by a paid invoice. The unpaid sweep
    # deactivates the account once this is older than the grace period.
    past_due_since = models.DateTimeField(null=True, blank=True)
    # Stripe's page for paying the failed invoice. An account deactivated for non-payment
    # cannot sign in to the console, so its emails carry this link to pay without it.
    unpaid_invoice_url = models.URLField(max_length=2000, blank=True, default="")
    last_event_created = models.BigIntegerField(default=0)
    last_payment_event_created = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.account_id} {self.plan} ({self.status})"


class StripeEvent(models.Model):
    """Every Stripe event id seen, so a redelivered event is processed exactly once."""

    id = models.CharField(primary_key=True, max_length=255)
    type = models.CharField(max_length=100)
    created = models.BigIntegerField()
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # What processing did: applied, or why it was ignored (stale, unknown_account, ...).
    outcome = models.CharField(max_length=32, default="applied")
    received_at = models.DateTimeField(default=timezone.now)


class SessionKeyStatus(models.TextChoices):
    PAYMENT_PENDING = "payment_pending", "Waiting for the payment"
    READY = "ready", "Key ready to be picked up"
    CLAIMED = "claimed", "Key picked up"


class PendingSessionKey(models.Model):
    """The first API key of an account bought through pricing-checkout, handed out once.

    The key is generated when the payment completes, kept Fernet-encrypted (key derived
    from SECRET_KEY) for at most an hour, and the ciphertext is wiped when it is read.
    """

    checkout_session_id = models.CharField(primary_key=True, max_length=255)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    mailbox = models.ForeignKey(
        "mailboxes.Mailbox", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(
        max_length=24, choices=SessionKeyStatus.choices, default=SessionKeyStatus.PAYMENT_PENDING
    )
    key_ciphertext = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
