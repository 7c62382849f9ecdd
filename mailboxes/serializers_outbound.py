"""Request and response shapes for mailboxes, send, reply and schedule edits."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from mailboxes.models import GateTiming, Mailbox, OversightMode
from mailboxes.services.attachment_safety import attachment_name_normalize
from multimail.addresses import AddressField
from multimail.epoch import epoch_ms
from multimail.header_fields import HeaderTextField
from multimail.serializers import CopiedFieldsMixin

MAX_MARKDOWN_BYTES = 256 * 1024
MAX_RECIPIENTS = 50
_ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?Z$")
# type/subtype in ASCII, then optional parameters in printable ASCII: it is a header value.
_MIME_TYPE = re.compile(r"^[\w.+-]+/[\w.+-]+( *;[ -~]*)?$", re.ASCII)


def mailbox_representation(mailbox: Mailbox) -> dict[str, Any]:
    """The Mailbox schema: flags the spec types as integers are 0/1."""
    return {
        "id": mailbox.pk,
        "tenant_id": mailbox.account_id,
        "address": mailbox.address,
        "display_name": mailbox.display_name or None,
        "oversight_mode": mailbox.oversight_mode,
        "auto_cc": mailbox.auto_cc,
        "auto_bcc": mailbox.auto_bcc,
        "forward_inbound": int(mailbox.forward_inbound),
        "webhook_url": mailbox.webhook_url,
        "oversight_webhook_url": mailbox.oversight_webhook_url,
        "signature_block": mailbox.signature_block,
        "created_at": epoch_ms(mailbox.created_at),
        "is_active": int(mailbox.is_active),
        "ai_disclosure": int(mailbox.ai_disclosure),
        "mcp_configured": int(mailbox.mcp_configured),
        "default_gate_timing": mailbox.default_gate_timing,
        "scheduling_enabled": int(mailbox.scheduling_enabled),
    }


class MailboxSerializer(serializers.Serializer):
    """Documentation of ``mailbox_representation`` for the schema."""

    id = serializers.CharField()
    tenant_id = serializers.CharField()
    address = serializers.EmailField()
    display_name = serializers.CharField(allow_null=True)
    oversight_mode = serializers.ChoiceField(choices=OversightMode.values)
    auto_cc = serializers.EmailField(allow_null=True)
    auto_bcc = serializers.EmailField(allow_null=True)
    forward_inbound = serializers.IntegerField()
    webhook_url = serializers.URLField(allow_null=True)
    oversight_webhook_url = serializers.URLField(allow_null=True)
    signature_block = serializers.CharField(allow_null=True)
    created_at = serializers.IntegerField(help_text="epoch milliseconds")
    is_active = serializers.IntegerField()
    ai_disclosure = serializers.IntegerField()
    mcp_configured = serializers.IntegerField()
    default_gate_timing = serializers.ChoiceField(choices=GateTiming.values)
    scheduling_enabled = serializers.IntegerField()


class MailboxListSerializer(serializers.Serializer):
    mailboxes = MailboxSerializer(many=True)
    cursor = serializers.CharField(allow_null=True)


class MailboxCreateSerializer(serializers.Serializer):
    address_local = HeaderTextField(max_length=320)
    display_name = HeaderTextField(max_length=200, required=False, allow_blank=True)
    webhook_url = serializers.URLField(max_length=2000, required=False, allow_null=True)
    ai_disclosure = serializers.BooleanField(required=False, default=False)
    approval_code = serializers.CharField(max_length=32, required=False, allow_blank=True)
    oversight_mode = serializers.CharField(
        required=False, help_text="Ignored: new mailboxes always start at gated_send."
    )

    def to_internal_value(self, data: Any) -> Any:
        # Official clients also send the full address as "address".
        if isinstance(data, dict) and "address_local" not in data and "address" in data:
            data = {**data, "address_local": data["address"]}
        return super().to_internal_value(data)


class MailboxUpdateSerializer(serializers.Serializer):
    # BooleanField takes true/false and 1/0: the MCP's configure tool sends integers.
    display_name = HeaderTextField(
        max_length=200, required=False, allow_blank=True, allow_null=True
    )
    oversight_mode = serializers.CharField(required=False)
    auto_cc = AddressField(required=False, allow_null=True, allow_blank=True)
    auto_bcc = AddressField(required=False, allow_null=True, allow_blank=True)
    forward_inbound = serializers.BooleanField(required=False)
    webhook_url = serializers.URLField(
        max_length=2000, required=False, allow_null=True, allow_blank=True
    )
    oversight_webhook_url = serializers.URLField(
        max_length=2000, required=False, allow_null=True, allow_blank=True
    )
    signature_block = serializers.CharField(
        max_length=200, required=False, allow_null=True, allow_blank=True
    )
    ai_disclosure = serializers.BooleanField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # "" clears an optional setting, like null.
        return {
            key: (None if value == "" and key != "display_name" else value)
            for key, value in attrs.items()
        }


class MailboxConfigureSerializer(MailboxUpdateSerializer):
    webhook_url = None  # type: ignore[assignment]
    oversight_webhook_url = None  # type: ignore[assignment]
    forward_inbound = None  # type: ignore[assignment]
    default_gate_timing = serializers.ChoiceField(choices=GateTiming.values, required=False)
    scheduling_enabled = serializers.BooleanField(required=False)
    mcp_configured = serializers.BooleanField(required=False)


def _parse_send_at(value: str) -> datetime:
    if not _ISO_UTC.match(value):
        raise serializers.ValidationError(
            "send_at must be ISO 8601 UTC ending in Z, e.g. 2026-01-31T09:00:00Z."
        )
    try:
        moment = datetime.fromisoformat(value.removesuffix("Z")).replace(tzinfo=UTC)
    except ValueError:
        raise serializers.ValidationError("send_at is not a valid date and time.") from None
    if moment <= timezone.now():
        raise serializers.ValidationError(
            "send_at is in the past. Use a future time, or omit send_at to send now.",
            code="validation_error",
        )
    return moment


class SendAtField(serializers.CharField):
    def to_internal_value(self, data: Any) -> datetime:  # type: ignore[override]
        return _parse_send_at(super().to_internal_value(data))


class AttachmentInputSerializer(serializers.Serializer):
    # Both become MIME header parameters (Content-Disposition, Content-Type).
    name = HeaderTextField(max_length=255)
    content_base64 = serializers.CharField(trim_whitespace=False)
    content_type = HeaderTextField(max_length=255)

    def validate_name(self, value: str) -> str:
        if any(char in value for char in "/\\") or value in {".", ".."}:
            raise serializers.ValidationError("name must be a file name without path separators.")
        # Stored, judged and sent as the recipient's system will read it.
        return attachment_name_normalize(value)

    def validate_content_type(self, value: str) -> str:
        if not _MIME_TYPE.fullmatch(value):
            raise serializers.ValidationError("content_type must be a MIME type like text/plain.")
        return value

    def validate_content_base64(self, value: str) -> bytes:
        try:
            return base64.b64decode("".join(value.split()), validate=True)
        except (binascii.Error, ValueError):
            raise serializers.ValidationError("content_base64 is not valid base64.") from None


def _recipients(required: bool) -> serializers.ListField:
    return serializers.ListField(
        child=AddressField(),
        required=required,
        allow_empty=not required,
        max_length=MAX_RECIPIENTS,
    )


class _BodyMixin(CopiedFieldsMixin, serializers.Serializer):
    markdown = serializers.CharField(max_length=MAX_MARKDOWN_BYTES, trim_whitespace=False)
    cc = _recipients(False)
    bcc = _recipients(False)
    attachments = AttachmentInputSerializer(many=True, required=False)
    idempotency_key = serializers.CharField(max_length=255, required=False, allow_blank=True)

    def validate_markdown(self, value: str) -> str:
        if len(value.encode()) > MAX_MARKDOWN_BYTES:
            raise serializers.ValidationError(
                f"markdown is over {MAX_MARKDOWN_BYTES} bytes.", code="max_length"
            )
        return value

    def validate_attachments(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        names = [item["name"] for item in value]
        if len(set(names)) != len(names):
            raise serializers.ValidationError("Each attachment needs a different name.")
        return value


class SendEmailSerializer(_BodyMixin):
    to = _recipients(True)
    subject = HeaderTextField(max_length=998)
    send_at = SendAtField(required=False, help_text="ISO 8601 UTC ending in Z")
    gate_timing = serializers.ChoiceField(choices=GateTiming.values, required=False)


class ReplySerializer(_BodyMixin):
    pass


class SendResponseSerializer(serializers.Serializer):
    id = serializers.CharField()
    status = serializers.CharField()
    thread_id = serializers.CharField()
    message = serializers.CharField()


class IdempotentReplaySerializer(serializers.Serializer):
    id = serializers.CharField()
    status = serializers.CharField()
    idempotent = serializers.BooleanField()
    thread_id = serializers.CharField()


class ContentEditSerializer(CopiedFieldsMixin, serializers.Serializer):
    """Corrections to an email's recipients and content, every field optional but at least
    one sent (the schema says so with minProperties): the agent's schedule edit and the
    operator's edit-then-approve take the same fields with the same rules."""

    min_fields = 1
    # The field an empty body's error names first (the one callers most often mean).
    empty_body_param = "to"
    to = serializers.ListField(
        child=AddressField(),
        required=False,
        allow_empty=False,
        max_length=MAX_RECIPIENTS,
    )
    cc = _recipients(False)
    bcc = _recipients(False)
    subject = HeaderTextField(max_length=998, required=False)
    markdown = serializers.CharField(
        max_length=MAX_MARKDOWN_BYTES, required=False, trim_whitespace=False
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            first = self.empty_body_param
            names = [first, *(str(name) for name in self.fields if name != first)]
            raise serializers.ValidationError(
                {first: [f"Send at least one of {', '.join(names)}."]}, code="required"
            )
        return attrs


class ScheduleUpdateSerializer(ContentEditSerializer):
    """A scheduled email's new time and content (PATCH .../schedule)."""

    empty_body_param = "send_at"
    send_at = SendAtField(required=False, help_text="ISO 8601 UTC ending in Z")


class ScheduleResponseSerializer(serializers.Serializer):
    id = serializers.CharField()
    status = serializers.CharField()
    send_at = serializers.DateTimeField(allow_null=True)
    thread_id = serializers.CharField()
