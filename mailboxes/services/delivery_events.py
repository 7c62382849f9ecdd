"""Provider delivery events (delivered, bounced, complained) on outbound mail.

Each event is stored once (``DeliveryEvent.provider_event_id`` is unique, so a webhook the
provider redelivers changes nothing), updates the email, feeds the suppression list (hard
bounces and complaints), re-checks the account's bounce and complaint rates, and fans out
as a ``message.*`` webhook event.

Enforcement: over the last ``ENFORCEMENT_WINDOW`` and at least ``ENFORCEMENT_MIN_SENDS``
sends, a hard-bounce rate over 5% or a complaint rate over 0.3% disables sending for the
account (the thresholds mailbox providers use to judge a sender); the operator is told
why, and support re-enables it after cleaning the list.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.actors import Actor
from accounts.models import Account
from accounts.principals import principal_versions_bump
from accounts.services import audit_record, operator_email_send
from mailboxes.events import emit_event
from mailboxes.models import DeliveryEvent, Direction, Email, Suppression, WebhookEvent
from mailboxes.services.suppression import suppression_add

logger = logging.getLogger("multimail.delivery")

ENFORCEMENT_WINDOW = timedelta(days=30)
ENFORCEMENT_MIN_SENDS = 100
MAX_BOUNCE_RATE = 0.05
MAX_COMPLAINT_RATE = 0.003


class EventKind(StrEnum):
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


class BounceType(StrEnum):
    HARD = "hard"
    SOFT = "soft"


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    """A provider's event, normalized (the Postmark webhook builds it from anymail's)."""

    kind: EventKind
    provider_event_id: str
    provider_message_id: str
    recipient: str
    occurred_at: datetime
    bounce_type: BounceType | None = None
    email_id: str = ""  # our id, when the provider echoes the metadata we sent
    payload: dict[str, Any] = field(default_factory=dict)


_WEBHOOK_EVENT = {
    EventKind.DELIVERED: WebhookEvent.MESSAGE_DELIVERED,
    EventKind.BOUNCED: WebhookEvent.MESSAGE_BOUNCED,
    EventKind.COMPLAINED: WebhookEvent.MESSAGE_COMPLAINED,
}


def _find_email(event: ProviderEvent) -> Email | None:
    outbound = Email.objects.select_related("account", "mailbox").filter(
        direction=Direction.OUTBOUND
    )
    if event.email_id:
        email = outbound.filter(pk=event.email_id).first()
        if email is not None:
            return email
    if event.provider_message_id:
        return outbound.filter(provider_message_id=event.provider_message_id).first()
    return None


@transaction.atomic
def delivery_event_apply(*, event: ProviderEvent) -> DeliveryEvent | None:
    """Apply one provider event; None when it was seen before or names no email of ours."""
    email = _find_email(event)
    if email is None:
        logger.info(
            "delivery_event_unknown_email kind=%s provider_message_id=%s",
            event.kind,
            event.provider_message_id,
        )
        return None
    try:
        with transaction.atomic():  # savepoint: a duplicate leaves the outer work intact
            record = DeliveryEvent.objects.create(
                account=email.account,
                email=email,
                event_type=event.kind,
                recipient=event.recipient.lower()[:320],
                provider_event_id=event.provider_event_id[:255],
                payload={"bounce_type": event.bounce_type, "provider": event.payload},
                occurred_at=event.occurred_at,
            )
    except IntegrityError:
        logger.info("delivery_event_duplicate provider_event_id=%s", event.provider_event_id)
        return None

    if event.kind == EventKind.DELIVERED:
        Email.objects.filter(pk=email.pk, delivered_at__isnull=True).update(
            delivered_at=event.occurred_at
        )
    elif event.kind == EventKind.BOUNCED:
        Email.objects.filter(pk=email.pk).update(
            bounced_at=event.occurred_at, bounce_type=event.bounce_type
        )
    reason = {
        (EventKind.BOUNCED, BounceType.HARD): Suppression.Reason.HARD_BOUNCE,
        (EventKind.COMPLAINED, None): Suppression.Reason.COMPLAINT,
    }.get((event.kind, event.bounce_type if event.kind == EventKind.BOUNCED else None))
    if reason is not None and event.recipient:
        suppression_add(
            mailbox=email.mailbox,
            account_id=email.account_id,
            address=event.recipient,
            reason=reason,
        )
    emit_event(
        account=email.account,
        event_type=_WEBHOOK_EVENT[event.kind],
        mailbox=email.mailbox,
        data={
            "email_id": email.pk,
            "recipient": event.recipient,
            "occurred_at": event.occurred_at.isoformat(),
            "bounce_type": event.bounce_type,
        },
    )
    if event.kind != EventKind.DELIVERED:
        account_enforce_reputation(account=email.account)
    return record


@dataclass(frozen=True, slots=True)
class ReputationRates:
    sends: int
    hard_bounces: int
    complaints: int

    @property
    def bounce_rate(self) -> float:
        return self.hard_bounces / self.sends if self.sends else 0.0

    @property
    def complaint_rate(self) -> float:
        return self.complaints / self.sends if self.sends else 0.0


def reputation_rates(*, account: Account) -> ReputationRates:
    since = timezone.now() - ENFORCEMENT_WINDOW
    events = DeliveryEvent.objects.filter(account=account, created_at__gte=since)
    return ReputationRates(
        sends=Email.objects.filter(
            account=account, direction=Direction.OUTBOUND, sent_at__gte=since
        ).count(),
        hard_bounces=events.filter(
            event_type=EventKind.BOUNCED, payload__bounce_type=BounceType.HARD
        ).count(),
        complaints=events.filter(event_type=EventKind.COMPLAINED).count(),
    )


def account_enforce_reputation(*, account: Account) -> str | None:
    """Disable sending when the rates are over the limits; returns the reason when it did."""
    rates = reputation_rates(account=account)
    if rates.sends < ENFORCEMENT_MIN_SENDS:
        return None
    if rates.bounce_rate > MAX_BOUNCE_RATE:
        reason = (
            f"Bounce rate {rates.bounce_rate:.1%} over the last 30 days exceeds "
            f"{MAX_BOUNCE_RATE:.0%} ({rates.hard_bounces} hard bounces in {rates.sends} sends)."
        )
    elif rates.complaint_rate > MAX_COMPLAINT_RATE:
        reason = (
            f"Spam complaint rate {rates.complaint_rate:.2%} over the last 30 days exceeds "
            f"{MAX_COMPLAINT_RATE:.1%} ({rates.complaints} complaints in {rates.sends} sends)."
        )
    else:
        return None
    # Compare-and-set: only the first event over the line disables and notifies.
    changed = Account.objects.filter(pk=account.pk, sending_disabled=False).update(
        sending_disabled=True, sending_disabled_reason=reason[:200]
    )
    if not changed:
        return None
    principal_versions_bump([account.pk])
    account.sending_disabled, account.sending_disabled_reason = True, reason[:200]
    audit_record(
        actor=Actor.system(account, "delivery enforcement"),
        action="account.sending_disabled",
        resource_type="account",
        resource_id=account.pk,
        metadata={"reason": reason},
    )
    operator_email_send(
        account=account,
        subject="Sending disabled for your account",
        text=f"Sending was disabled: {reason}\n\nRemove invalid addresses from your lists, "
        "then contact support to re-enable sending.",
    )
    logger.warning("sending_disabled account=%s reason=%s", account.pk, reason)
    return reason
