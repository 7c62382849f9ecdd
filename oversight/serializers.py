"""Request and response shapes of the oversight API."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from mailboxes.models import Email, OversightMode
from multimail.serializers import FastRepresentationMixin
from oversight.services import Action, DecisionStatus


class PendingEmailSerializer(FastRepresentationMixin, serializers.Serializer[Email]):
    """A held email in the queue; the page renders up to a hundred, from named rows."""

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
