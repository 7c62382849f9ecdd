"""Request and response shapes of the billing and usage endpoints."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from accounts.oversight_addresses import OversightAddressField
from accounts.plans import PAID_PLANS
from accounts.signup import SIGNUP_MODES
from billing.models import BillingInterval
from mailboxes.models import OversightMode
from multimail.header_fields import HeaderTextField

PAID_PLAN_CHOICES = [str(plan) for plan in PAID_PLANS]


class CheckoutRequestSerializer(serializers.Serializer):
    plan = serializers.ChoiceField(choices=PAID_PLAN_CHOICES)
    interval = serializers.ChoiceField(
        choices=BillingInterval.values, default=BillingInterval.MONTHLY
    )
    success_url = serializers.URLField(required=False, max_length=2000)
    cancel_url = serializers.URLField(required=False, max_length=2000)


class CheckoutResponseSerializer(serializers.Serializer):
    checkout_url = serializers.URLField()
    session_id = serializers.CharField(
        allow_null=True, help_text="Null when a paying account changed plan in place."
    )
    plan = serializers.CharField(required=False, help_text="Set on an in-place plan change.")


class PortalRequestSerializer(serializers.Serializer):
    return_url = serializers.URLField(required=False, max_length=2000)


class PortalResponseSerializer(serializers.Serializer):
    portal_url = serializers.URLField()


class CancelRequestSerializer(serializers.Serializer):
    approval_code = serializers.CharField(required=False, max_length=16, allow_blank=True)


class CancelResponseSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["cancelling"])
    cancel_at_period_end = serializers.BooleanField()
    access_until = serializers.DateTimeField(allow_null=True)


def _must_be_true(value: bool) -> None:
    if value is not True:
        raise serializers.ValidationError(
            "Must be true: read and accept the policy to create an account.",
            code="validation_error",
        )


class PricingCheckoutRequestSerializer(serializers.Serializer):
    operator_name = HeaderTextField(max_length=200)
    oversight_email = OversightAddressField()
    plan = serializers.ChoiceField(choices=PAID_PLAN_CHOICES)
    interval = serializers.ChoiceField(
        choices=BillingInterval.values, default=BillingInterval.MONTHLY
    )
    accepted_tos = serializers.BooleanField(validators=[_must_be_true])
    accepted_operator_agreement = serializers.BooleanField(validators=[_must_be_true])
    accepted_anti_spam_policy = serializers.BooleanField(validators=[_must_be_true])
    oversight_mode = serializers.ChoiceField(
        choices=[str(mode) for mode in SIGNUP_MODES], default=OversightMode.GATED_SEND
    )
    slug = serializers.CharField(required=False, max_length=63)
    use_case = serializers.CharField(required=False, max_length=2000, allow_blank=True)
    turnstile_token = serializers.CharField(
        required=False, max_length=4096, allow_blank=True, help_text="Deprecated; ignored."
    )
    attribution = serializers.JSONField(
        required=False, help_text="Marketing attribution; a bad shape is dropped."
    )
    success_url = serializers.URLField(required=False, max_length=2000)
    cancel_url = serializers.URLField(required=False, max_length=2000)


class PricingCheckoutResponseSerializer(serializers.Serializer):
    checkout_url = serializers.URLField()
    session_id = serializers.CharField(
        help_text="Pass to GET /v1/billing/session-key after paying."
    )


class SessionKeyQuerySerializer(serializers.Serializer):
    session_id = serializers.CharField(max_length=255)


class SessionKeyResponseSerializer(serializers.Serializer):
    api_key = serializers.CharField()
    mailbox_id = serializers.CharField(allow_null=True)
    mailbox_address = serializers.CharField(allow_null=True)
    oversight_mode = serializers.CharField()
    org_name = serializers.CharField(allow_null=True)
    oversight_email = serializers.CharField(allow_null=True)


class StripeWebhookResponseSerializer(serializers.Serializer):
    received = serializers.BooleanField()
    duplicate = serializers.BooleanField(required=False)
    outcome = serializers.CharField(required=False)


USAGE_PERIODS = ["current", "previous", "summary", "daily"]
# 9999-12-31T23:59:59.999Z: the last instant a date can hold.
MAX_EPOCH_MS = 253_402_300_799_999


class UsageQuerySerializer(serializers.Serializer):
    # ``from`` is a keyword: declared through the fields mapping below.
    to = serializers.IntegerField(required=False, min_value=0, max_value=MAX_EPOCH_MS)
    breakdown = serializers.ChoiceField(required=False, choices=["daily"])
    period = serializers.ChoiceField(required=False, choices=USAGE_PERIODS)

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        fields["from"] = serializers.IntegerField(
            required=False, min_value=0, max_value=MAX_EPOCH_MS
        )
        return fields

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("from"), attrs.get("to")
        if start is not None and end is not None and start > end:
            raise serializers.ValidationError(
                {"from": "from must not be after to (both are epoch milliseconds)."}
            )
        return attrs


class UsageSummarySerializer(serializers.Serializer):
    to = serializers.IntegerField()
    emails_sent = serializers.IntegerField()
    emails_received = serializers.IntegerField()
    api_calls = serializers.IntegerField()
    oversight_actions = serializers.IntegerField()

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        fields["from"] = serializers.IntegerField()
        return fields


class UsageDayEntrySerializer(serializers.Serializer):
    date = serializers.DateField()
    event_type = serializers.CharField()
    count = serializers.IntegerField()


class UsageDailySerializer(serializers.Serializer):
    to = serializers.IntegerField()
    breakdown = serializers.ChoiceField(choices=["daily"])

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        fields["from"] = serializers.IntegerField()
        # "data" would shadow Serializer.data as a class attribute.
        fields["data"] = UsageDayEntrySerializer(many=True)
        return fields
