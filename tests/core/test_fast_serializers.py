"""The fast rendering of hot read serializers gives exactly DRF's output."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from rest_framework import serializers

from mailboxes.models import Attachment, Direction, EmailStatus, SpamVerdict
from mailboxes.serializers_reading import (
    AttachmentInfoSerializer,
    EmailResponseSerializer,
    EmailSummarySerializer,
    ThreadEmailSerializer,
)
from multimail.serializers import FastRepresentationMixin, _plans
from tests.inbound.conftest import make_email

FAST_SERIALIZERS = [EmailSummarySerializer, EmailResponseSerializer, ThreadEmailSerializer]


def _drf(serializer_class: type[Any], instance: Any, context: dict[str, Any]) -> Any:
    """What DRF itself renders for ``instance``, bypassing the mixin."""
    serializer = serializer_class(instance, context=context)
    base = next(
        cls
        for cls in serializer_class.__mro__
        if issubclass(cls, serializers.Serializer) and not issubclass(cls, FastRepresentationMixin)
    )
    return base.to_representation(serializer, instance)


@pytest.mark.parametrize("serializer_class", FAST_SERIALIZERS)
def test_emails_render_as_drf_renders_them(owner: Any, serializer_class: type[Any]) -> None:
    plus_two = timezone(timedelta(hours=2))
    emails = [
        make_email(owner.mailbox),
        make_email(
            owner.mailbox,
            direction=Direction.OUTBOUND,
            status=EmailStatus.SENT,
            to=["a@example.org", "b@example.org"],
            cc=["c@example.org"],
            subject="Ünïcode ✓",
            spam_score=7,
            spam_verdict=SpamVerdict.FLAGGED,
            delivered_at=datetime(2026, 5, 1, 12, 30, 15, 123456, tzinfo=plus_two),
            bounced_at=datetime(2026, 5, 2, tzinfo=UTC),
            bounce_type="hard",
            approved_at=datetime(2026, 5, 1, tzinfo=UTC),
            approved_by="ops@example.org",
            has_attachments=True,
            tags={"k": "v", "n": "1"},
            user_label="spam",
            failure_reason="content_rejected: phishing",
        ),
        make_email(owner.mailbox, status=EmailStatus.PENDING_INBOUND_APPROVAL, subject=""),
    ]
    Attachment.objects.create(
        email=emails[1], filename="a.pdf", content_type="application/pdf", size=3, content=b"abc"
    )
    for email in emails:
        email.refresh_from_db()
        attachments = list(Attachment.objects.filter(email=email))
        for readable in (True, False):
            context = {"content_readable": readable, "attachments": attachments}
            fast = serializer_class(email, context=context).data
            assert fast == _drf(serializer_class, email, context)
        many = serializer_class(emails, many=True, context=context).data
        assert many == [_drf(serializer_class, item, context) for item in emails]
    assert _plans[serializer_class] is not None  # rendered by the plan, not DRF's fallback


def test_attachment_info_renders_as_drf(owner: Any) -> None:
    email = make_email(owner.mailbox, has_attachments=True)
    attachment = Attachment.objects.create(
        email=email, filename="é.txt", content_type="text/plain", size=5, content=b"hello"
    )
    assert AttachmentInfoSerializer(attachment).data == _drf(
        AttachmentInfoSerializer, attachment, {}
    )
    assert _plans[AttachmentInfoSerializer] is not None
