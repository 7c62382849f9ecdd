"""Request and response shapes of the oversight API."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from mailboxes.models import Email, OversightMode
from oversight.services import Action, DecisionStatus


class PendingEmailSerializer(serializers.Serializer[Email]):
    id = serializers.CharField()
    mailbox_id = serializers.CharField()
    direction = serializers.CharField()
    # "from" is a Python keyword: declared in __init__ below.
    to = serializers.ListField(child=serializers.CharField())
    subject = serializers.CharField()
    body_markdown = serializers.CharField(source="markdown")
    status = serializers.CharField()
    received_at = serializers.DateTimeField()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["from"] = serializers.CharField(source="from_address")


# Renders received_at exactly as the serializer's DateTimeField does (ISO 8601, "Z").
_RECEIVED_AT = serializers.DateTimeField()


def pending_email_data(row: Any) -> dict[str, Any]:
    """One pending email as PendingEmailSerializer renders it (same keys, order and values),
    without building and walking a serializer per email: the list answers up to a hundred
    of them per request. The serializer stays the documented shape of the response."""
    return {
        "id": row.id,
        "mailbox_id": row.mailbox_id,
        "direction": row.direction,
        "to": row.to,
        "subject": row.subject,
        "body_markdown": row.markdown,
        "status": row.status,
        "received_at": _RECEIVED_AT.to_representation(row.received_at),
        "from": row.from_address,
    }


class PendingListSerializer(serializers.Serializer[Any]):
    emails = PendingEmailSerializer(many=True)
    cursor = serializers.CharField(allow_null=True)


class DecideRequestSerializer(serializers.Serializer[Any]):
    email_id = serializers.CharField(max_length=64)
    action = serializers.ChoiceField(choices=[a.value for a in Action])
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class DecideResponseSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=[s.value for s in DecisionStatus])
    postmark_message_id = serializers.CharField(allow_null=True)


class UpgradeRequestSerializer(serializers.Serializer[Any]):
    target_mode = serializers.ChoiceField(choices=OversightMode.values)


class UpgradeRequestedSerializer(serializers.Serializer[Any]):
    status = serializers.CharField()
    target_mode = serializers.CharField()
    message = serializers.CharField()


class UpgradeRedeemSerializer(serializers.Serializer[Any]):
    code = serializers.CharField(max_length=32)


class UpgradedSerializer(serializers.Serializer[Any]):
    status = serializers.CharField()
    oversight_mode = serializers.CharField()
