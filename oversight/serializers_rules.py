"""Shapes of the oversight-rules API, for the schema: the list is validated by
``oversight.rules.rules_parse``, which names each bad rule's index and field."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from mailboxes.models import Direction
from oversight.rules import MAX_RULES, RuleAction


class RuleMatchSerializer(serializers.Serializer[Any]):
    recipients = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Outbound: exact addresses or @domain; every recipient must match.",
    )
    senders = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Inbound: exact addresses or @domain the sender must match.",
    )
    first_contact = serializers.BooleanField(
        required=False,
        help_text="True when some recipient (or the sender) never exchanged mail with the account.",
    )
    has_attachments = serializers.BooleanField(required=False)
    has_links = serializers.BooleanField(required=False)
    subject_contains = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Any of them, case-insensitive."
    )
    body_contains = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Any of them, case-insensitive."
    )


class RuleSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=100, help_text="Unique in the mailbox.")
    direction = serializers.ChoiceField(choices=Direction.choices)
    match = RuleMatchSerializer(help_text="Every field given must hold.")
    action = serializers.ChoiceField(choices=[str(action) for action in RuleAction])


class RulesSerializer(serializers.Serializer[Any]):
    rules = RuleSerializer(
        many=True, help_text=f"In order: the first match wins. At most {MAX_RULES}."
    )


class RulesReplaceSerializer(RulesSerializer):
    approval_code = serializers.CharField(
        max_length=32,
        required=False,
        help_text="The operator's code, when a loosening change answered 202.",
    )
