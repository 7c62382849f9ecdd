"""Shapes of the reading endpoints: EmailSummary, EmailResponse, ThreadResponse, Contact,
suppression entries, and the request bodies of tags and contacts."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from mailboxes.models import (
    Attachment,
    Contact,
    DecidedBy,
    Direction,
    Email,
    EmailStatus,
    SpamVerdict,
    Suppression,
)
from multimail.addresses import AddressField
from multimail.epoch import epoch_ms
from multimail.serializers import FastRepresentationMixin

MAX_TAGS = 50


class EmailSummarySerializer(FastRepresentationMixin, serializers.ModelSerializer[Email]):
    """A list row: no body. Also used for thread items and the spam list."""

    # "from" is a Python keyword: declared through the class namespace.
    locals()["from"] = serializers.CharField(source="from_address")
    to = serializers.ListField(child=serializers.CharField())
    direction = serializers.ChoiceField(choices=Direction.choices)
    status = serializers.ChoiceField(choices=EmailStatus.choices)
    spam_verdict = serializers.ChoiceField(choices=SpamVerdict.choices, allow_null=True)
    thread_id = serializers.CharField(allow_null=True)
    mailbox_id = serializers.CharField()

    class Meta:
        model = Email
        fields = [
            "id",
            "mailbox_id",
            "from",
            "to",
            "subject",
            "direction",
            "status",
            "spam_score",
            "spam_verdict",
            "received_at",
            "thread_id",
            "has_attachments",
            "delivered_at",
            "bounced_at",
            "bounce_type",
        ]
        read_only_fields = fields


class AttachmentInfoSerializer(FastRepresentationMixin, serializers.ModelSerializer[Attachment]):
    name = serializers.CharField(source="filename")

    class Meta:
        model = Attachment
        fields = ["name", "size", "content_type"]
        read_only_fields = fields


class OversightDecisionSerializer(serializers.Serializer[Email]):
    """Who decided where an email goes (``oversight_decision``), read from the email; null
    while nobody has (an email waiting for its scan)."""

    by = serializers.ChoiceField(choices=DecidedBy.values, source="decided_by")
    rule = serializers.CharField(
        source="decided_rule", allow_null=True, help_text="The rule's name when by is rule."
    )
    at = serializers.DateTimeField(source="decided_at", allow_null=True)

    def to_representation(self, instance: Email) -> dict[str, Any] | None:  # type: ignore[override]
        if not instance.decided_by:
            return None
        data = super().to_representation(instance)
        data["rule"] = data["rule"] or None
        return data


class EmailResponseSerializer(FastRepresentationMixin, serializers.ModelSerializer[Email]):
    """One email with its body. ``markdown`` is empty and ``attachments`` is empty while
    the agent may not read the content (held or rejected inbound mail)."""

    # "from" is a Python keyword: declared through the class namespace.
    locals()["from"] = serializers.CharField(source="from_address")
    to = serializers.ListField(child=serializers.CharField())
    cc = serializers.ListField(child=serializers.CharField())
    direction = serializers.ChoiceField(choices=Direction.choices)
    status = serializers.ChoiceField(choices=EmailStatus.choices)
    spam_verdict = serializers.ChoiceField(choices=SpamVerdict.choices, allow_null=True)
    thread_id = serializers.CharField(allow_null=True)
    tags = serializers.DictField(child=serializers.CharField())
    attachments = serializers.SerializerMethodField()
    markdown = serializers.SerializerMethodField()
    failure_reason = serializers.SerializerMethodField()
    hold_reason = serializers.SerializerMethodField()
    version = serializers.SerializerMethodField()
    oversight_decision = serializers.SerializerMethodField()

    class Meta:
        model = Email
        fields = [
            "id",
            "from",
            "to",
            "cc",
            "subject",
            "direction",
            "received_at",
            "thread_id",
            "markdown",
            "status",
            "has_attachments",
            "attachments",
            "delivered_at",
            "bounced_at",
            "bounce_type",
            "approved_at",
            "approved_by",
            "send_at",
            "spam_score",
            "spam_verdict",
            "user_label",
            "tags",
            "failure_reason",
            "hold_reason",
            "edited_by_operator",
            "version",
            "oversight_decision",
        ]
        read_only_fields = fields

    def _readable(self) -> bool:
        return bool(self.context.get("content_readable", True))

    def get_markdown(self, email: Email) -> str:
        return email.markdown if self._readable() else ""

    @extend_schema_field(AttachmentInfoSerializer(many=True))
    def get_attachments(self, email: Email) -> list[dict[str, Any]]:
        attachments = self.context.get("attachments", [])
        return AttachmentInfoSerializer(attachments, many=True).data  # type: ignore[return-value]

    def get_version(self, email: Email) -> str:
        """The content version (mailboxes.versions): it changes whenever anything the
        operator judges changes, so a decision can name what it was made on."""
        return str(self.context.get("version", ""))

    @extend_schema_field(OversightDecisionSerializer(allow_null=True))
    def get_oversight_decision(self, email: Email) -> dict[str, Any] | None:
        return OversightDecisionSerializer().to_representation(email)

    def get_failure_reason(self, email: Email) -> str | None:
        """Why outbound mail was rejected or failed to send; null otherwise."""
        if email.direction == Direction.OUTBOUND and email.status in (
            EmailStatus.REJECTED,
            EmailStatus.SEND_FAILED,
        ):
            return email.failure_reason or None
        return None

    def get_hold_reason(self, email: Email) -> str | None:
        """Why an outbound email waits for the operator when its mailbox's mode did not
        hold it ("sending stopped by the operator"); null otherwise."""
        if email.status == EmailStatus.PENDING_SEND_APPROVAL:
            return email.hold_reason or None
        return None


class ThreadEmailSerializer(FastRepresentationMixin, serializers.ModelSerializer[Email]):
    # "from" is a Python keyword: declared through the class namespace.
    locals()["from"] = serializers.CharField(source="from_address")
    to = serializers.ListField(child=serializers.CharField())
    direction = serializers.ChoiceField(choices=Direction.choices)
    status = serializers.ChoiceField(choices=EmailStatus.choices)

    class Meta:
        model = Email
        fields = [
            "id",
            "from",
            "to",
            "subject",
            "direction",
            "status",
            "received_at",
            "has_attachments",
            "delivered_at",
            "bounced_at",
        ]
        read_only_fields = fields


class ThreadResponseSerializer(serializers.Serializer[Any]):
    thread_id = serializers.CharField()
    message_count = serializers.IntegerField()
    participants = serializers.ListField(child=serializers.CharField())
    last_activity = serializers.DateTimeField()
    has_unanswered_inbound = serializers.BooleanField()
    emails = ThreadEmailSerializer(many=True)


class EmailListResponseSerializer(serializers.Serializer[Any]):
    emails = EmailSummarySerializer(many=True)
    cursor = serializers.CharField(allow_null=True)


class TagsSerializer(serializers.Serializer[Any]):
    tags = serializers.DictField(
        child=serializers.CharField(max_length=500, allow_blank=True), allow_empty=True
    )

    def validate_tags(self, tags: dict[str, str]) -> dict[str, str]:
        if len(tags) > MAX_TAGS:
            raise serializers.ValidationError(f"At most {MAX_TAGS} tags per email.")
        for key in tags:
            if not key or len(key) > 100:
                raise serializers.ValidationError("Tag keys must be 1 to 100 characters.")
        return tags


class TagDeletedSerializer(serializers.Serializer[Any]):
    deleted = serializers.BooleanField()


class EmailCancelResponseSerializer(serializers.Serializer[Any]):
    id = serializers.CharField()
    status = serializers.ChoiceField(choices=EmailStatus.choices)


class AttachmentUrlSerializer(serializers.Serializer[Any]):
    url = serializers.URLField()
    filename = serializers.CharField()
    size_bytes = serializers.IntegerField()
    content_type = serializers.CharField()
    expires_in = serializers.IntegerField(help_text="Seconds until the URL stops working.")


class SpamActionResponseSerializer(serializers.Serializer[Any]):
    id = serializers.CharField()
    status = serializers.ChoiceField(choices=EmailStatus.choices)
    user_label = serializers.CharField()


class ContactSerializer(serializers.ModelSerializer[Contact]):
    created_at = serializers.SerializerMethodField()

    class Meta:
        model = Contact
        fields = ["id", "name", "email", "tags", "created_at"]
        read_only_fields = fields

    def get_created_at(self, contact: Contact) -> int:
        """Epoch milliseconds, as the public API types it."""
        return epoch_ms(contact.created_at)


class ContactCreateSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=200)
    email = AddressField()
    tags = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, default=list, max_length=50
    )


class ContactListResponseSerializer(serializers.Serializer[Any]):
    contacts = ContactSerializer(many=True)
    cursor = serializers.CharField(allow_null=True)


class DeletedSerializer(serializers.Serializer[Any]):
    deleted = serializers.BooleanField()


class SuppressionSerializer(serializers.ModelSerializer[Suppression]):
    mailbox_id = serializers.CharField(allow_null=True)

    class Meta:
        model = Suppression
        fields = ["id", "email_address", "reason", "mailbox_id", "created_at"]
        read_only_fields = fields


class SuppressionListResponseSerializer(serializers.Serializer[Any]):
    suppressions = SuppressionSerializer(many=True)
    cursor = serializers.CharField(allow_null=True)


class SuppressionRemovedSerializer(serializers.Serializer[Any]):
    deleted = serializers.BooleanField()
    email_address = serializers.CharField()
