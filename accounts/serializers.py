"""Request parsing and response shapes for the accounts endpoints (also the schema)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import Scope
from accounts.oversight_addresses import OversightAddressField
from accounts.plans import Plan
from accounts.signup import SIGNUP_MODE_CHOICES
from multimail.addresses import AddressField
from multimail.header_fields import HeaderTextField
from multimail.serializers import JsonIntegerField


@extend_schema_field({"type": "string", "enum": list(Scope.values)})
class ScopeNameField(serializers.CharField):
    """A scope name, published as the enum it is. Checked by
    accounts.services.validate_scopes, whose messages name the valid scopes."""


def _must_be_true(value: bool, field: str) -> bool:
    if value is not True:
        raise serializers.ValidationError(
            f"{field} must be true: signing up means accepting it.", code="validation_error"
        )
    return value


# --- Signup -----------------------------------------------------------------------------


class ChallengeRequestSerializer(serializers.Serializer):
    oversight_email = AddressField(required=False)


class ChallengeSerializer(serializers.Serializer):
    algorithm = serializers.CharField()
    challenge = serializers.CharField()
    maxnumber = serializers.IntegerField()
    salt = serializers.CharField()
    signature = serializers.CharField()


class PowSolutionSerializer(serializers.Serializer):
    algorithm = serializers.CharField(max_length=32)
    challenge = serializers.CharField(max_length=512)
    number = serializers.IntegerField(min_value=0)
    salt = serializers.CharField(max_length=512)
    signature = serializers.CharField(max_length=512)


class SignupRequestSerializer(serializers.Serializer):
    # The operator's name goes into the identity header and the operator's mail.
    operator_name = HeaderTextField(max_length=200)
    oversight_email = OversightAddressField()
    accepted_tos = serializers.BooleanField()
    accepted_operator_agreement = serializers.BooleanField()
    accepted_anti_spam_policy = serializers.BooleanField()
    pow_solution = PowSolutionSerializer()
    slug = serializers.CharField(max_length=63, required=False, allow_blank=True)
    physical_address = serializers.CharField(
        max_length=2000, required=False, allow_blank=True, allow_null=True
    )
    use_case = serializers.CharField(
        max_length=2000, required=False, allow_blank=True, allow_null=True
    )
    oversight_mode = serializers.ChoiceField(choices=SIGNUP_MODE_CHOICES, required=False)
    payment_method = serializers.ChoiceField(choices=["stripe", "crypto"], required=False)
    email_use_type = serializers.ChoiceField(choices=["transactional", "marketing"], required=False)
    cf_challenge_response = serializers.CharField(max_length=4096, required=False)
    turnstile_token = serializers.CharField(max_length=4096, required=False)
    fingerprint = serializers.CharField(max_length=256, required=False)
    form_open_at = serializers.IntegerField(required=False)
    attribution = serializers.JSONField(required=False)

    def validate_accepted_tos(self, value: bool) -> bool:
        return _must_be_true(value, "accepted_tos")

    def validate_accepted_operator_agreement(self, value: bool) -> bool:
        return _must_be_true(value, "accepted_operator_agreement")

    def validate_accepted_anti_spam_policy(self, value: bool) -> bool:
        return _must_be_true(value, "accepted_anti_spam_policy")

    def validate_email_use_type(self, value: str) -> str:
        if value != "transactional":
            raise serializers.ValidationError(
                "Only transactional email is accepted today: MultiMail does not send marketing "
                "email. Send email_use_type 'transactional' or leave it out.",
                code="validation_error",
            )
        return value


class StatusMessageSerializer(serializers.Serializer):
    status = serializers.CharField()
    message = serializers.CharField()


class SlugCheckSerializer(serializers.Serializer):
    available = serializers.BooleanField()
    slug = serializers.CharField()
    reason = serializers.CharField(allow_null=True)
    suggestions = serializers.ListField(child=serializers.CharField())
    address_preview = serializers.CharField()


class ConfirmRequestSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=32)


class ConfirmResponseSerializer(serializers.Serializer):
    status = serializers.CharField()
    name = serializers.CharField()
    slug = serializers.CharField()
    oversight_mode = serializers.CharField()
    api_key = serializers.CharField()
    mailbox_id = serializers.CharField(allow_null=True)
    mailbox_address = serializers.CharField(allow_null=True)
    oversight_email = serializers.EmailField()
    use_case = serializers.CharField(allow_null=True)


class ResendRequestSerializer(serializers.Serializer):
    oversight_email = AddressField()


# --- Account ----------------------------------------------------------------------------

# A year: longer is "never", which is 0.
MAX_APPROVAL_EXPIRY_HOURS = 8760


class AccountInfoSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    slug = serializers.CharField()
    plan = serializers.ChoiceField(choices=Plan.choices)
    oversight_email = serializers.EmailField()
    pending_oversight_email = serializers.EmailField(
        allow_null=True,
        help_text="A new oversight email that was asked for and has not confirmed yet; "
        "oversight_email changes once it does.",
    )
    physical_address = serializers.CharField(allow_null=True)
    use_case = serializers.CharField(allow_null=True)
    state = serializers.CharField()
    is_active = serializers.BooleanField()
    sending_disabled = serializers.BooleanField()
    sending_disabled_reason = serializers.CharField(allow_null=True)
    sending_stopped = serializers.BooleanField(
        help_text="The operator stopped all outbound mail (POST /v1/oversight/stop): sends "
        "are accepted and held with the reason 'sending stopped by the operator'."
    )
    sending_stopped_at = serializers.DateTimeField(allow_null=True)
    require_operator_approval = serializers.BooleanField()
    approval_expiry_hours = serializers.IntegerField(
        help_text="A held email waiting longer is rejected ('expired after N hours'); the "
        "operator is reminded once at half time. 0: held mail never expires."
    )
    monthly_email_quota = serializers.IntegerField()
    emails_sent_this_month = serializers.IntegerField()
    emails_remaining_this_month = serializers.IntegerField()
    max_mailboxes = serializers.IntegerField()
    storage_used_bytes = serializers.IntegerField()
    max_storage_bytes = serializers.IntegerField()
    max_api_keys = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class ApprovalCodeSerializer(serializers.Serializer):
    approval_code = serializers.CharField(max_length=16, required=False, allow_blank=True)


class AccountUpdateSerializer(ApprovalCodeSerializer):
    name = HeaderTextField(max_length=200, required=False)
    oversight_email = OversightAddressField(required=False)
    physical_address = serializers.CharField(
        max_length=2000, required=False, allow_blank=True, allow_null=True
    )
    require_operator_approval = serializers.BooleanField(required=False)
    approval_expiry_hours = JsonIntegerField(
        required=False, min_value=0, max_value=MAX_APPROVAL_EXPIRY_HOURS
    )


class PendingApprovalSerializer(serializers.Serializer):
    status = serializers.CharField()
    approval_id = serializers.CharField()
    message = serializers.CharField()


class StatusSerializer(serializers.Serializer):
    status = serializers.CharField()


# --- API keys ---------------------------------------------------------------------------


class ApiKeyInfoSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=Scope.choices))
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    is_active = serializers.BooleanField()


class ApiKeyListSerializer(serializers.Serializer):
    api_keys = ApiKeyInfoSerializer(many=True)
    cursor = serializers.CharField(allow_null=True)


class ApiKeyCreateSerializer(ApprovalCodeSerializer):
    name = serializers.CharField(max_length=200)
    scopes = serializers.ListField(
        child=ScopeNameField(max_length=32), required=False, max_length=5
    )


class ApiKeyUpdateSerializer(ApprovalCodeSerializer):
    name = serializers.CharField(max_length=200, required=False)
    scopes = serializers.ListField(
        child=ScopeNameField(max_length=32), required=False, max_length=5
    )


class ApiKeyCreatedSerializer(serializers.Serializer):
    id = serializers.CharField()
    api_key = serializers.CharField()
    prefix = serializers.CharField()
    name = serializers.CharField()
    scopes = serializers.ListField(child=serializers.CharField())


class ApiKeyUpdatedSerializer(ApiKeyInfoSerializer):
    status = serializers.CharField()


# --- Audit log --------------------------------------------------------------------------


class AuditEntrySerializer(serializers.Serializer):
    id = serializers.CharField()
    action = serializers.CharField()
    resource_type = serializers.CharField()
    resource_id = serializers.CharField()
    actor_key_id = serializers.CharField(allow_null=True)
    actor = serializers.CharField()
    actor_kind = serializers.CharField()
    metadata = serializers.JSONField(allow_null=True)
    request_id = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()


class AuditLogSerializer(serializers.Serializer):
    entries = AuditEntrySerializer(many=True)
    cursor = serializers.CharField(allow_null=True)


def parse(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """Validate ``data``; errors become the envelope through the exception handler."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
