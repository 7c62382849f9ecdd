from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.plans import Plan
from multimail.ids import new_id


class AccountState(models.TextChoices):
    PENDING = "pending_operator_confirmation", "Waiting for the activation code"
    ACTIVE = "active", "Active"
    DEACTIVATED = "deactivated", "Deactivated"


class Account(models.Model):
    """A tenant. Every other row belongs to exactly one account."""

    id = models.CharField(primary_key=True, max_length=26, default=new_id, editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=63, unique=True)
    oversight_email = models.EmailField(max_length=320)
    physical_address = models.TextField(blank=True, default="")
    use_case = models.TextField(blank=True, default="")
    plan = models.CharField(max_length=16, choices=Plan.choices, default=Plan.STARTER)
    state = models.CharField(
        max_length=32, choices=AccountState.choices, default=AccountState.PENDING
    )
    deactivated_reason = models.CharField(max_length=200, blank=True, default="")
    sending_disabled = models.BooleanField(default=False)
    sending_disabled_reason = models.CharField(max_length=200, blank=True, default="")
    # The operator's stop switch (oversight.stop): while set, every outbound email of the
    # account is held instead of sent. Unlike sending_disabled it is the operator's own
    # choice, and only the operator clears it.
    sending_stopped = models.BooleanField(default=False)
    sending_stopped_at = models.DateTimeField(null=True, blank=True)
    # A held email waiting longer than this is rejected (oversight.expiry); 0 means never.
    approval_expiry_hours = models.PositiveIntegerField(default=72)
    # Admin actions taken with an agent's API key need the operator's code (design: on by
    # default, the operator can turn it off).
    require_operator_approval = models.BooleanField(default=True)
    # Oversight mode chosen at signup for the default mailbox.
    default_oversight_mode = models.CharField(max_length=16, default="gated_send")
    # Start of the current monthly quota period (the billing period on paid plans).
    period_start = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    activated_at = models.DateTimeField(null=True, blank=True)
    confirmation_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"

    @property
    def is_active(self) -> bool:
        return self.state == AccountState.ACTIVE


class Operator(models.Model):
    """A human who runs oversight for an account; signs in to the console by emailed code."""

    id = models.CharField(primary_key=True, max_length=26, default=new_id, editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="operators")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="operator_roles"
    )
    email = models.EmailField(max_length=320)
    name = models.CharField(max_length=200, blank=True, default="")
    invited_by = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL)
    # The role exists only because the address is the account's oversight email (signup,
    # first sign-in): it ends when the oversight email moves elsewhere. Invited roles stay.
    via_oversight_email = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    last_sign_in_at = models.DateTimeField(null=True, blank=True)
    # "Sign out everywhere": console sessions of this role signed in before this moment
    # end at their next request (sessions are rows in the database, keyed by person, not
    # by role, so the role keeps the cut-off instead of hunting for them).
    sessions_ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "email"], name="operator_unique_email"),
        ]

    def __str__(self) -> str:
        return f"{self.email} @ {self.account.slug}"


class Scope(models.TextChoices):
    READ = "read", "read"
    SEND = "send", "send"
    ADMIN = "admin", "admin"
    OVERSIGHT = "oversight", "oversight"
    OVERSIGHT_READ = "oversight_read", "oversight_read"


class ApiKey(models.Model):
    """An agent's credential. Only a SHA-256 hash of the secret is stored."""

    id = models.CharField(primary_key=True, max_length=26, default=new_id, editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=200)
    # The first characters of the key, shown in lists and used to find the row.
    prefix = models.CharField(max_length=24, unique=True)
    key_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class CodePurpose(models.TextChoices):
    ACTIVATION = "activation", "Account activation"
    CONSOLE_LOGIN = "console_login", "Console sign-in"
    MODE_UPGRADE = "mode_upgrade", "Oversight mode upgrade"
    ADMIN_ACTION = "admin_action", "Admin action approval"


class OneTimeCode(models.Model):
    """A code emailed to an operator. Stored hashed; single use; bound to a purpose and,
    through ``subject``, to what it approves (a mailbox and target mode, an action digest)."""

    id = models.CharField(primary_key=True, max_length=26, default=new_id, editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="codes")
    purpose = models.CharField(max_length=16, choices=CodePurpose.choices)
    subject = models.CharField(max_length=200, blank=True, default="")
    code_hash = models.CharField(max_length=64)
    payload = models.JSONField(default=dict, blank=True)
    # Who the code was sent to (the console login for one operator).
    sent_to = models.EmailField(max_length=320, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["account", "purpose", "code_hash"])]


class ActorKind(models.TextChoices):
    API_KEY = "api_key", "API key"
    OPERATOR = "operator", "Operator"
    HOSTED_LINK = "hosted_link", "Hosted approval link"
    SUPPORT = "support", "Support staff"
    SYSTEM = "system", "System"


class AuditEntry(models.Model):
    """Who changed what. Written by services, never by signals."""

    id = models.CharField(primary_key=True, max_length=26, default=new_id, editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="audit_entries")
    action = models.CharField(max_length=64)
    resource_type = models.CharField(max_length=32)
    resource_id = models.CharField(max_length=64, blank=True, default="")
    actor_kind = models.CharField(max_length=16, choices=ActorKind.choices)
    actor_key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=320, blank=True, default="")
    metadata = models.JSONField(null=True, blank=True)
    request_id = models.CharField(max_length=128, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["account", "-id"])]
        verbose_name_plural = "audit entries"


class AdminActionStatus(models.TextChoices):
    PENDING = "pending", "Waiting for the operator"
    COMPLETED = "completed", "Approved and done"
    DENIED = "denied", "Denied"


class AdminActionRequest(models.Model):
    """An admin action an agent's key asked for that waits for the operator.

    The agent gets 202 ``pending_approval``; the operator gets a code by email. Either the
    agent repeats the call with ``approval_code`` or the operator approves in the console.
    ``digest`` binds the code to the exact parameters asked for.
    """

    id = models.CharField(primary_key=True, max_length=26, default=new_id, editable=False)
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="admin_action_requests"
    )
    action = models.CharField(max_length=64)
    params = models.JSONField(default=dict)
    digest = models.CharField(max_length=64)
    requested_by = models.ForeignKey(ApiKey, null=True, on_delete=models.SET_NULL, related_name="+")
    code = models.OneToOneField(
        OneTimeCode, null=True, on_delete=models.SET_NULL, related_name="admin_action"
    )
    status = models.CharField(
        max_length=16, choices=AdminActionStatus.choices, default=AdminActionStatus.PENDING
    )
    result = models.JSONField(null=True, blank=True)
    decided_by = models.CharField(max_length=320, blank=True, default="")
    # Why the operator denied it, in their words (optional).
    deny_reason = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["account", "status", "-id"])]


class OversightEmailChange(models.Model):
    """A new oversight email someone asked for, which takes effect only once that address
    confirms (a link mailed to it). The previous address is told at each step and holds a
    link that cancels the change, or undoes it for 14 days after it took effect.

    Only hashes of the two link tokens are stored: the links are the credentials.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for the new address to confirm"
        CONFIRMED = "confirmed", "Confirmed by the new address"
        CANCELLED = "cancelled", "Cancelled before it took effect"
        UNDONE = "undone", "Undone by the previous address"

    id = models.CharField(primary_key=True, max_length=26, default=new_id, editable=False)
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="oversight_email_changes"
    )
    old_email = models.EmailField(max_length=320)
    new_email = models.EmailField(max_length=320)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    requested_by = models.CharField(max_length=320, blank=True, default="")
    confirm_token_hash = models.CharField(max_length=64, unique=True)
    undo_token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    confirm_expires_at = models.DateTimeField()
    confirmed_at = models.DateTimeField(null=True, blank=True)
    undo_expires_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["account", "status"])]

    def __str__(self) -> str:
        return f"{self.old_email} → {self.new_email} ({self.status})"
