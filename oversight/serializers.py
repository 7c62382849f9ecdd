"""Request and response shapes of the oversight API."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from mailboxes.models import GateTiming, OversightMode, SpamVerdict
from mailboxes.serializers_outbound import ContentEditSerializer
from mailboxes.serializers_reading import OversightDecisionSerializer
from multimail.serializers import CopiedFieldsMixin
from oversight.facts import DecisionFacts
from oversight.services import MAX_BATCH, Action, DecisionStatus

# Named in SPECTACULAR_SETTINGS ENUM_NAME_OVERRIDES: single and batch answers share it.
DECISION_STATUSES = [status.value for status in DecisionStatus]


class PendingAttachmentSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    content_type = serializers.CharField(help_text="As declared by the sender.")
    size = serializers.IntegerField()
    detected_type = serializers.CharField(
        allow_null=True, help_text="What the bytes are, when they have a known signature."
    )
    executable = serializers.BooleanField(help_text="A program or script: opening it runs code.")
    warnings = serializers.ListField(
        child=serializers.CharField(), help_text="Executable, or type, name and bytes disagree."
    )


class PendingLinkSerializer(serializers.Serializer[Any]):
    text = serializers.CharField(help_text="What the reader sees.")
    url = serializers.CharField(help_text="Where the link really goes.")
    host = serializers.CharField(help_text="The target's host, in ASCII (punycode) form.")
    warnings = serializers.ListField(
        child=serializers.CharField(),
        help_text="E.g. the text shows another address or domain than the target.",
    )


class PendingSpamSerializer(serializers.Serializer[Any]):
    verdict = serializers.ChoiceField(choices=SpamVerdict.values, allow_null=True)
    score = serializers.IntegerField(allow_null=True, help_text="0-100")
    reasons = serializers.ListField(child=serializers.CharField())
    content_findings = serializers.ListField(
        child=serializers.CharField(),
        help_text="What the outbound content filter noticed without refusing the email.",
    )


class SendingKeySerializer(serializers.Serializer[Any]):
    id = serializers.CharField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    revoked = serializers.BooleanField()


class AnsweredMessageSerializer(serializers.Serializer[Any]):
    email_id = serializers.CharField()
    direction = serializers.CharField()
    subject = serializers.CharField()
    # "from" is a Python keyword: declared in __init__ below.
    date = serializers.DateTimeField()
    excerpt = serializers.CharField()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["from"] = serializers.CharField(source="sender")


class PendingEmailSerializer(serializers.Serializer[DecisionFacts]):
    """A held email in the queue with the facts the operator decides on (oversight.facts).
    The fields before ``cc`` are those of the public API; the rest are additive."""

    id = serializers.CharField(source="email.id")
    mailbox_id = serializers.CharField(source="email.mailbox_id")
    direction = serializers.CharField(source="email.direction")
    # "from" is a Python keyword: declared in __init__ below.
    to = serializers.ListField(child=serializers.CharField(), source="email.to")
    subject = serializers.CharField(source="email.subject")
    body_markdown = serializers.CharField(source="email.markdown")
    status = serializers.CharField(source="email.status")
    received_at = serializers.DateTimeField(source="email.received_at")
    cc = serializers.ListField(child=serializers.CharField(), source="email.cc")
    bcc = serializers.ListField(child=serializers.CharField(), source="email.bcc")
    reply_to = serializers.ListField(child=serializers.CharField())
    headers = serializers.DictField(
        child=serializers.CharField(), help_text="The other stored headers (inbound mostly)."
    )
    send_at = serializers.DateTimeField(source="email.send_at", allow_null=True)
    gate_timing = serializers.ChoiceField(choices=GateTiming.values, source="email.gate_timing")
    hold_reason = serializers.CharField(
        source="email.hold_reason",
        help_text="Why it is held when its mailbox's mode did not hold it (the stop "
        "switch: 'sending stopped by the operator'); empty otherwise.",
    )
    attachments = PendingAttachmentSerializer(many=True)
    links = PendingLinkSerializer(many=True)
    spam = PendingSpamSerializer()
    first_contact = serializers.DictField(
        child=serializers.BooleanField(),
        help_text="For each recipient (outbound, with the mailbox's automatic Cc and Bcc) or "
        "the sender (inbound): true when the account never exchanged mail with them.",
    )
    sent_by_key = SendingKeySerializer(allow_null=True)
    replying_to = AnsweredMessageSerializer(source="answers", allow_null=True)
    warnings = serializers.ListField(
        child=serializers.CharField(), help_text="Everything above that deserves a second look."
    )
    version = serializers.CharField(
        help_text="Changes whenever anything the operator judges changes (content version)."
    )
    oversight_decision = OversightDecisionSerializer(
        source="email", allow_null=True, help_text="Who held it: its mode, or which rule."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["from"] = serializers.CharField(source="email.from_address")


class PendingListSerializer(serializers.Serializer[Any]):
    emails = PendingEmailSerializer(many=True)
    cursor = serializers.CharField(allow_null=True)


class EditsSerializer(ContentEditSerializer):
    """The operator's corrections to a held outbound email, approved in the same step: the
    fields of an agent's schedule edit, with the same rules."""


class DecideRequestSerializer(CopiedFieldsMixin, serializers.Serializer[Any]):
    email_id = serializers.CharField(max_length=64, required=False)
    email_ids = serializers.ListField(
        child=serializers.CharField(max_length=64),
        min_length=1,
        max_length=MAX_BATCH,
        required=False,
        help_text=f"Instead of email_id: 1-{MAX_BATCH} emails decided the same way, each "
        "on its own; the answer is {'results': [...]}, one entry per id.",
    )
    versions = serializers.DictField(
        child=serializers.CharField(max_length=64),
        required=False,
        help_text="With email_ids: the version of each email as you read it, by id.",
    )
    action = serializers.ChoiceField(choices=[a.value for a in Action])
    version = serializers.CharField(
        max_length=64,
        required=False,
        help_text="The email's version as you read it (GET /v1/oversight/pending). If the "
        "email changed since, nothing is decided and the answer is 409 conflict: read it "
        "again. Without it the decision is for the current version.",
    )
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    edits = EditsSerializer(
        required=False,
        help_text="With action approve and one email_id: correct the held outbound email "
        "and approve the corrected version in one step (it is rendered and scanned again, "
        "and sent exactly as edited).",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        single, batch = attrs.get("email_id"), attrs.get("email_ids")
        if "edits" in attrs and (batch is not None or attrs.get("action") != Action.APPROVE):
            raise serializers.ValidationError(
                {"edits": ["edits go with action approve and one email_id."]}, code="invalid"
            )
        if single is None and batch is None:
            raise serializers.ValidationError(
                {"email_id": ["Send email_id (one email) or email_ids (several)."]},
                code="required",
            )
        if single is not None and batch is not None:
            raise serializers.ValidationError(
                {"email_ids": ["Send email_id or email_ids, not both."]}, code="invalid"
            )
        if batch is not None and len(set(batch)) != len(batch):
            raise serializers.ValidationError(
                {"email_ids": ["Each email id may appear once."]}, code="invalid"
            )
        unknown = sorted(set(attrs.get("versions", {})) - set(batch or ()))
        if unknown:
            raise serializers.ValidationError(
                {"versions": [f"Versions given for ids not in email_ids: {', '.join(unknown)}."]},
                code="invalid",
            )
        return attrs


class BatchErrorSerializer(serializers.Serializer[Any]):
    code = serializers.CharField()
    message = serializers.CharField()


class BatchResultSerializer(serializers.Serializer[Any]):
    email_id = serializers.CharField()
    status = serializers.ChoiceField(
        choices=DECISION_STATUSES, required=False, help_text="When decided."
    )
    error = BatchErrorSerializer(required=False, help_text="When this email was not decided.")


class BatchDecideResponseSerializer(serializers.Serializer[Any]):
    results = BatchResultSerializer(many=True)


class DecideResponseSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=DECISION_STATUSES)
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


class SendingSwitchSerializer(serializers.Serializer[Any]):
    status = serializers.CharField(help_text="stopped or resumed")
    sending_stopped = serializers.BooleanField()
    message = serializers.CharField()
