"""Oversight writes: holding mail for the operator, decisions, upgrades."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from mailboxes.events import emit_event
from mailboxes.models import Email, WebhookEvent
from oversight.policy import held_status


@transaction.atomic
def email_hold(*, email: Email) -> None:
    """Put an email in front of the operator: called by every path whose policy decision is
    HOLD (outbound pipeline, inbound from webhook or SMTP, scheduled sends)."""
    email.status = held_status(email.direction)
    email.status_changed_at = timezone.now()
    email.save(update_fields=["status", "status_changed_at"])
    emit_event(
        account=email.account,
        event_type=WebhookEvent.OVERSIGHT_PENDING,
        mailbox=email.mailbox,
        data={
            "email_id": email.pk,
            "direction": email.direction,
            "subject": email.subject,
            "status": email.status,
        },
    )
