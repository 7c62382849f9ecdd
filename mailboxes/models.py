from __future__ import annotations

import secrets

from django.db import models
from django.utils import timezone

from accounts.models import Account, ApiKey
from multimail.ids import new_id

WEBHOOK_SECRET_PREFIX = "whsec_"


def new_signing_secret() -> str:
    """A webhook signing secret. Here rather than in the webhook service because it is the
    default of the mailbox's secret column (every mailbox has one from its first row)."""
    return WEBHOOK_SECRET_PREFIX + secrets.token_urlsafe(32)


class OversightMode(models.TextChoices):
    """The ladder, least to most autonomous (order matters: see oversight.policy)."""

    READ_ONLY = "read_only", "Read only"
    GATED_ALL = "gated_all", "Gated: all mail"
    GATED_SEND = "gated_send", "Gated: outbound"
    MONITORED = "monitored", "Monitored"
    AUTONOMOUS = "autonomous", "Autonomous"


class GateTiming(models.TextChoices):
    GATE_FIRST = "gate_first", "Approve, then wait for send_at"
    SCHEDULE_FIRST = "schedule_first", "At send_at, then approval"


class DecidedBy(models.TextChoices):
    """Who decided where an email went (its ``oversight_decision``): the mailbox's mode,
    one of its oversight rules, the operator (console, hosted link), or an API key with the
    oversight scope."""

    # Labels read inside a sentence: "approved by the operator".
    MODE = "mode", "the oversight mode"
    RULE = "rule", "an oversight rule"
    OPERATOR = "operator", "the operator"
    API_KEY = "api_key", "an API key"


class Domain(models.Model):
    """A custom sending/receiving domain (Pro and Scale)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACTIVE = "active", "Active"

    id = models.CharField(primary_key=True, max_length=26, default=new_id, editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="domains")
    domain = models.CharField(max_length=253, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    dkim_verified = models.BooleanField(default=False)
    spf_verified = models.BooleanField(default=False)
    mx_verified = models.BooleanField(default=False)
    return_path_verified = models.BooleanField(default=False)
    dns_records = models.JSONField(null=True, blank=True)
    provider_domain_id = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    verified_at = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.domain


class Mailbox(models.Model):
    id = models.CharField(primary_key=True, max_length=26, default=new_id, editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="mailboxes")
    # Full address, lowercase. Unique forever: a deleted mailbox keeps its address.
    address = models.EmailField(max_length=320, unique=True)
    domain = models.ForeignKey(
        Domain, null=True, blank=True, on_delete=models.PROTECT, related_name="mailboxes"
    )
    display_name = models.CharField(max_length=200, blank=True, default="")
    oversight_mode = models.CharField(
        max_length=16, choices=OversightMode.choices, default=OversightMode.GATED_SEND
    )
    auto_cc = models.EmailField(max_length=320, null=True, blank=True)
    auto_bcc = models.EmailField(max_length=320, null=True, blank=True)
    forward_inbound = models.BooleanField(default=False)
    webhook_url = models.URLField(max_length=2000, null=True, blank=True)
    oversight_webhook_url = models.URLField(max_length=2000, null=True, blank=True)
    # Signs deliveries to webhook_url and oversight_webhook_url as a subscription's secret
    # signs its deliveries; during rotation the old one also signs until it expires.
    webhook_signing_secret = models.CharField(max_length=100, default=new_signing_secret)
    webhook_previous_secret = models.CharField(max_length=100, blank=True, default="")
    webhook_previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    signature_block = models.CharField(max_length=200, null=True, blank=True)
    ai_disclosure = models.BooleanField(default=False)
    mcp_configured = models.BooleanField(default=False)
    scheduling_enabled = models.BooleanField(default=True)
    default_gate_timing = models.CharField(
        max_length=16, choices=GateTiming.choices, default=GateTiming.GATE_FIRST
    )
    # The mailbox's oversight rules, in order (oversight.rules validates and evaluates
    # them): one JSON list, replaced whole, under the mailbox's row lock.
    oversight_rules = models.JSONField(default=list, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["account", "-id"])]
        verbose_name_plural = "mailboxes"

    def __str__(self) -> str:
        return self.address


class Direction(models.TextChoices):
    INBOUND = "inbound", "Inbound"
    OUTBOUND = "outbound", "Outbound"


class EmailStatus(models.TextChoices):
    # Outbound, before it leaves: stored, waiting for the scan/render task.
    PENDING_SCAN = "pending_scan", "Pending scan"
    SCHEDULED = "scheduled", "Scheduled"
    PENDING_SEND_APPROVAL = "pending_send_approval", "Waiting for send approval"
    # Approved (or ungated) and queued for the provider: transient, swept if stuck.
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    SEND_FAILED = "send_failed", "Send failed"
    # Inbound.
    PENDING_INBOUND_APPROVAL = "pending_inbound_approval", "Waiting for inbound approval"
    UNREAD = "unread", "Unread"
    READ = "read", "Read"
    ARCHIVED = "archived", "Archived"
    DELETED = "deleted", "Deleted"
    SPAM_FLAGGED = "spam_flagged", "Flagged as spam"
    SPAM_QUARANTINED = "spam_quarantined", "Quarantined as spam"
    # Either direction.
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"


class SpamVerdict(models.TextChoices):
    CLEAN = "clean", "Clean"
    FLAGGED = "flagged", "Flagged"
    QUARANTINED = "quarantined", "Quarantined"


class Email(models.Model):
    id = models.CharField(primary_key=True, max_length=26, default=new_id, editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="emails")
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="emails")
    direction = models.CharField(max_length=8, choices=Direction.choices)
    status = models.CharField(max_length=32, choices=EmailStatus.choices)
    from_address = models.CharField(max_length=998)
    to = models.JSONField(default=list)
    cc = models.JSONField(default=list, blank=True)
    bcc = models.JSONField(default=list, blank=True)
    subject = models.CharField(max_length=998, blank=True, default="")
    markdown = models.TextField(blank=True, default="")
    html = models.TextField(blank=True, default="")
    text = models.TextField(blank=True, default="")
    # RFC 5322 threading.
    message_id = models.CharField(max_length=998, blank=True, default="")
    in_reply_to = models.CharField(max_length=998, blank=True, default="")
    references = models.TextField(blank=True, default="")
    thread_id = models.CharField(max_length=26, db_index=True)
    # Timestamps: received_at is when the email entered this server (either direction).
    received_at = models.DateTimeField(default=timezone.now)
    status_changed_at = models.DateTimeField(default=timezone.now)
    send_at = models.DateTimeField(null=True, blank=True)
    gate_timing = models.CharField(
        max_length=16, choices=GateTiming.choices, default=GateTiming.GATE_FIRST
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.CharField(max_length=320, null=True, blank=True)
    decision_reason = models.TextField(blank=True, default="")
    # The content version the operator approved (mailboxes.versions): delivery sends only
    # that version, and refuses an email that no longer matches it.
    approved_version = models.CharField(max_length=64, blank=True, default="")
    # Who last decided where the email goes (oversight_decision): set by the lifecycle when
    # the policy routes it (mode or rule) and when someone decides on it while held.
    decided_by = models.CharField(max_length=16, choices=DecidedBy.choices, blank=True, default="")
    decided_rule = models.CharField(max_length=100, blank=True, default="")
    decided_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    bounced_at = models.DateTimeField(null=True, blank=True)
    bounce_type = models.CharField(max_length=16, null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    # Why a held email is held when it is not its mailbox's mode that held it (the
    # operator's stop switch): shown to the agent and the operator while it waits.
    hold_reason = models.CharField(max_length=200, blank=True, default="")
    # The operator corrected it (subject, body, recipients) when approving it: what was
    # sent is their version, and the agent is told so on the email's detail.
    edited_by_operator = models.BooleanField(default=False)
    # Why it was rejected by the content filter, or why sending failed.
    failure_reason = models.TextField(blank=True, default="")
    send_attempts = models.PositiveSmallIntegerField(default=0)
    provider_message_id = models.CharField(max_length=255, blank=True, default="")
    spam_score = models.IntegerField(null=True, blank=True)
    spam_verdict = models.CharField(
        max_length=16, choices=SpamVerdict.choices, null=True, blank=True
    )
    # Why the spam score is what it is (one line per rule that scored), for the operator.
    spam_reasons = models.JSONField(default=list, blank=True)
    # What the outbound content filter noticed without refusing the email (a refusal is in
    # failure_reason): shown to the operator who decides on it.
    content_findings = models.JSONField(default=list, blank=True)
    # The API key that sent it (outbound). Kept when the key is revoked; a deleted key
    # leaves null, and the operator then sees that the sender is unknown.
    sent_by_key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    user_label = models.CharField(max_length=16, null=True, blank=True)
    has_attachments = models.BooleanField(default=False)
    # The attachments' file names, one a line: written with the email, so that full-text
    # search (mailboxes.search) indexes them from this row alone.
    attachment_names = models.TextField(blank=True, default="")
    size_bytes = models.PositiveBigIntegerField(default=0)
    tags = models.JSONField(default=dict, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    # Outbound dedup: the agent's key (24 h) and a hash of recipients+subject+body (60 s).
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    content_hash = models.CharField(max_length=64, blank=True, default="")
    # When a delivery claimed this ``sending`` email (services.outbound.pipeline): set by a
    # compare-and-set before the provider call, so no row lock is held across it.
    delivery_claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["mailbox", "-id"]),
            models.Index(fields=["mailbox", "status", "-id"]),
            models.Index(fields=["mailbox", "thread_id"]),
            models.Index(fields=["mailbox", "message_id"]),
            models.Index(fields=["account", "status", "-id"]),
            # The oversight queue, an account's held mail newest first: the index above
            # cannot give one ordered stream for two statuses, and without this one the
            # planner walks the primary key back through every tenant's newer mail.
            models.Index(
                fields=["account", "-id"],
                name="email_pending_by_account",
                condition=models.Q(
                    status__in=[
                        EmailStatus.PENDING_SEND_APPROVAL,
                        EmailStatus.PENDING_INBOUND_APPROVAL,
                    ]
                ),
            ),
            models.Index(fields=["mailbox", "content_hash"]),
            models.Index(fields=["status", "status_changed_at"]),
            # The sending quota and warm-up counts (mailboxes.quotas): an account's or a
            # mailbox's outbound mail since a moment, read from the index alone (status is
            # included for the refused-mail filter), however much mail the account keeps.
            models.Index(
                fields=["account", "received_at"],
                name="email_outbound_by_account",
                include=["status"],
                condition=models.Q(direction=Direction.OUTBOUND),
            ),
            models.Index(
                fields=["mailbox", "received_at"],
                name="email_outbound_by_mailbox",
                include=["status"],
                condition=models.Q(direction=Direction.OUTBOUND),
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["mailbox", "idempotency_key"],
                name="email_unique_idempotency_key",
                condition=models.Q(idempotency_key__isnull=False),
            ),
            # A message is stored once per mailbox, however many times it is delivered (a
            # retried webhook, the SMTP path): concurrent deliveries need no lock for it.
            models.UniqueConstraint(
                fields=["mailbox", "message_id"],
                name="email_inbound_message_once",
                condition=models.Q(direction=Direction.INBOUND),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.subject!r} ({self.status})"


class Attachment(models.Model):
    id = models.CharField(primary_key=True, max_length=26, default=new_id, editable=False)
    email = models.ForeignKey(Email, on_delete=models.CASCADE, related_name="attachments")
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField()
    # Bytes live in the database: one backup covers mail and attachments, and reads need no
    # second system. Deployments with large volumes can move them behind STORAGES later.
    content = models.BinaryField()
    content_id = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["email", "filename"], name="attachment_unique_name"),
        ]


class Correspondent(models.Model):
    """An address this account exchanged mail with: one row per address and direction.

    ``outbound`` rows are recipients of sent mail, ``inbound`` rows senders of received
    mail (not quarantined spam). The operator sees from them whether a held email goes to
    someone new (first contact) in one indexed lookup, however much mail the account keeps.
    Written after the sending or receiving transaction commits (services.correspondents).
    """

    id = models.BigAutoField(primary_key=True)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    address = models.CharField(max_length=320)  # lowercase
    direction = models.CharField(max_length=8, choices=Direction.choices)
    # The first and latest email of the exchange: an email is never its own history.
    first_email_id = models.CharField(max_length=26)
    last_email_id = models.CharField(max_length=26)
    first_at = models.DateTimeField(default=timezone.now)
    last_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "address", "direction"], name="correspondent_unique"
            ),
        ]


class StorageUsage(models.Model):
    """The bytes an account stores: its emails' ``size_bytes`` plus its attachments' sizes.

    Kept by every write that changes them, in that write's transaction, with in-place
    increments (mailboxes.quotas), so reading it or checking the storage limit costs one
    row instead of summing all the account's mail. A row of its own rather than a column
    of Account: every writer updates it last in its transaction, after any mailbox and
    account row locks it takes, so it adds no lock-order cycle, and the hot Account row
    (read by every request) is not rewritten by every email. ``storage_reconcile``
    recomputes it from the sums.
    """

    account = models.OneToOneField(
        Account, primary_key=True, on_delete=models.CASCADE, related_name="storage_usage"
    )
    used_bytes = models.BigIntegerField(default=0)


class AccountSendCount(models.Model):
    """The account's outbound emails that count against its monthly quota, received since
    ``since`` (the start of the quota period it was last claimed in).

    A counter for the same reason as StorageUsage: checking the quota costs one conditional
    UPDATE instead of counting the month's mail, so a send costs the same at the millionth
    email of the month as at the first. Claimed by the send path (mailboxes.quotas) and
    given back by the lifecycle when an email it counted is rejected or cancelled; a claim
    in a new period recounts the rows once.
    """

    account = models.OneToOneField(
        Account, primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    # None until the first claim: a row made without a period is recounted on first use.
    since = models.DateTimeField(null=True)
    used = models.BigIntegerField(default=0)


class MailboxSendCount(models.Model):
    """The mailbox's counted outbound emails since ``since`` (a UTC midnight): its sends of
    the day against the warm-up cap, kept like AccountSendCount while it warms up."""

    mailbox = models.OneToOneField(
        Mailbox, primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    since = models.DateTimeField(null=True)
    used = models.BigIntegerField(default=0)


class DeliveryEvent(models.Model):
    """A provider event on an outbound email (delivered, bounced, complained, ...)."""

    id = models.CharField(primary_key=True, max_length=26, default=new_id, editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="delivery_events")
    email = models.ForeignKey(
        Email, null=True, blank=True, on_delete=models.CASCADE, related_name="delivery_events"
    )
    event_type = models.CharField(max_length=32)
    recipient = models.CharField(max_length=320, blank=True, default="")
    # The provider's own id for the event: a redelivered webhook is recognised and ignored.
    provider_event_id = models.CharField(max_length=255, unique=True)
    payload = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["account", "event_type", "created_at"])]


class Suppression(models.Model):
    class Reason(models.TextChoices):
        HARD_BOUNCE = "hard_bounce", "Hard bounce"
        SOFT_BOUNCE = "soft_bounce", "Soft bounce"
        COMPLAINT = "complaint", "Spam complaint"
        UNSUBSCRIBE = "unsubscribe", "Unsubscribed"
        MANUAL = "manual", "Added by the operator"

    id = models.CharField(primary_key=True, max_length=26, default=new_id, editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="suppressions")
    mailbox = models.ForeignKey(
        Mailbox, null=True, blank=True, on_delete=models.SET_NULL, related_name="suppressions"
    )
    email_address = models.EmailField(max_length=320)
    reason = models.CharField(max_length=16, choices=Reason.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "email_address"], name="suppression_unique_address"
            ),
        ]


class Contact(models.Model):
    """An entry in the account's address book, which the agent saves and searches."""

    id = models.CharField(primary_key=True, max_length=26, default=new_id, editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="contacts")
    name = models.CharField(max_length=200)
    email = models.EmailField(max_length=320)
    tags = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        # The model moved here from accounts; its table kept its name (and so its index's).
        db_table = "accounts_contact"
        ordering = ["-id"]
        indexes = [models.Index(fields=["account", "-id"])]


class WebhookEvent(models.TextChoices):
    MESSAGE_RECEIVED = "message.received"
    MESSAGE_SENT = "message.sent"
    # An outbound email gave up (send_failed), with its failure_reason.
    MESSAGE_SEND_FAILED = "message.send_failed"
    MESSAGE_DELIVERED = "message.delivered"
    MESSAGE_BOUNCED = "message.bounced"
    MESSAGE_COMPLAINED = "message.complained"
    OVERSIGHT_PENDING = "oversight.pending"
    OVERSIGHT_APPROVED = "oversight.approved"
    OVERSIGHT_REJECTED = "oversight.rejected"


class WebhookSubscription(models.Model):
    id = models.CharField(primary_key=True, max_length=26, default=new_id, editable=False)
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="webhook_subscriptions"
    )
    mailbox = models.ForeignKey(
        Mailbox,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="webhook_subscriptions",
    )
    url = models.URLField(max_length=2000)
    events = models.JSONField(default=list)
    signing_secret = models.CharField(max_length=100)
    # During rotation the old secret also signs, until previous_secret_expires_at.
    previous_secret = models.CharField(max_length=100, blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=200, blank=True, default="")
    failing_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]


class WebhookDelivery(models.Model):
    """One event for one target URL: a subscription, or a mailbox's own webhook URLs."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    id = models.CharField(primary_key=True, max_length=26, default=new_id, editable=False)
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="webhook_deliveries"
    )
    subscription = models.ForeignKey(
        WebhookSubscription,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="deliveries",
    )
    mailbox = models.ForeignKey(
        Mailbox, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    event_id = models.CharField(max_length=26, default=new_id)
    event_type = models.CharField(max_length=32)
    url = models.URLField(max_length=2000)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    # One sentence for the operator ("The endpoint refused the connection."); the exception
    # it was mapped from stays in error_detail for whoever debugs the endpoint.
    last_error = models.CharField(max_length=500, blank=True, default="")
    error_detail = models.CharField(max_length=500, blank=True, default="")
    # The last attempt as it went over the wire, shown in the console: the headers sent
    # (the signature changes per attempt), and what the endpoint answered.
    request_headers = models.JSONField(default=dict, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    response_body = models.TextField(blank=True, default="")
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    # The delivery this one re-sends (an operator's replay), if any.
    replay_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    next_attempt_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["account", "-id"]),
            models.Index(fields=["status", "next_attempt_at"]),
        ]
        verbose_name_plural = "webhook deliveries"


class AccountEvent(models.Model):
    """An event as the webhooks carry it, kept for the live stream (``GET /v1/events``).

    Written by ``emit_event`` in the transaction of the change it describes, without a
    number: ``seq`` (the stream's event id, increasing per account) is given once the row is
    committed (``mailboxes.services.event_stream.events_sequence``), so a stream that has
    read up to N never sees a later commit come back with a number below N. Rows older
    than ``EVENTS_RETENTION_HOURS`` are purged by a beat job.
    """

    id = models.BigAutoField(primary_key=True)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    mailbox = models.ForeignKey(
        Mailbox, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    event_type = models.CharField(max_length=32)
    payload = models.JSONField(default=dict)
    seq = models.PositiveBigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "seq"], name="account_event_seq_unique")
        ]
        indexes = [
            # The rows still to number, found without scanning the numbered ones.
            models.Index(
                fields=["account", "id"],
                condition=models.Q(seq__isnull=True),
                name="account_event_unnumbered",
            ),
            models.Index(fields=["created_at"], name="account_event_created"),
        ]


class AccountEventSequence(models.Model):
    """The last ``seq`` given to an account's events; its row lock orders the numbering."""

    account = models.OneToOneField(
        Account, primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    last_seq = models.PositiveBigIntegerField(default=0)
