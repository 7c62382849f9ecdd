"""Postmark's webhooks: inbound mail and delivery events, parsed by django-anymail.

Both are authenticated with HTTP Basic credentials (``POSTMARK_WEBHOOK_SECRET``,
"user:password", set in Postmark's webhook URL). They live under /v1/, so every error
answers the envelope: wrong or missing credentials are ``webhook_unauthorized``, a server
without the secret is ``server_misconfigured`` (refusing everything rather than accepting
unauthenticated mail), a body that is not a Postmark payload is ``invalid_parameter``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from anymail.exceptions import AnymailConfigurationError, AnymailWebhookValidationFailure
from anymail.signals import AnymailTrackingEvent
from anymail.webhooks.postmark import (
    PostmarkInboundWebhookView,
    PostmarkTrackingWebhookView,
)
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils import timezone

from mailboxes.services.delivery_events import (
    BounceType,
    EventKind,
    ProviderEvent,
    delivery_event_apply,
)
from mailboxes.services.inbound.parse import message_parse, postmark_message_parse
from mailboxes.services.inbound.receive import inbound_deliver
from multimail.errors import ApiError
from multimail.json_limits import json_bounds_check, json_loads_bounded

logger = logging.getLogger("multimail.inbound")

# Postmark bounce Types that mean the address will never accept mail.
HARD_BOUNCE_TYPES = {"HardBounce", "BadEmailAddress", "ManuallyDeactivated"}


class _PostmarkAuthMixin:
    # Our own check below answers server_misconfigured instead of anymail's warning.
    warn_if_no_basic_auth = False

    def _authenticate(self, request: HttpRequest) -> None:
        if not (getattr(settings, "ANYMAIL", {}) or {}).get("WEBHOOK_SECRET"):
            raise ApiError(
                "server_misconfigured",
                "POSTMARK_WEBHOOK_SECRET is not set on this server, so Postmark webhooks "
                "cannot be authenticated. The server operator must set it.",
            )
        try:
            self.run_validators(request)  # type: ignore[attr-defined]
        except AnymailWebhookValidationFailure:
            raise ApiError(
                "webhook_unauthorized",
                "Missing or wrong HTTP Basic credentials. Put the user:password from "
                "POSTMARK_WEBHOOK_SECRET in the webhook URL configured at Postmark.",
            ) from None

    def _events(self, request: HttpRequest) -> list[Any]:
        # anymail parses the body with the unbounded json.loads: check the bounds first.
        json_bounds_check(request.body)
        try:
            return list(self.parse_events(request))  # type: ignore[attr-defined]
        except (ValueError, KeyError, TypeError, AttributeError, AnymailConfigurationError):
            raise _not_a_payload() from None


def _not_a_payload() -> ApiError:
    return ApiError(
        "invalid_parameter",
        "The body is not a Postmark webhook payload of this kind. Point Postmark's "
        "inbound webhook at /v1/webhooks/postmark-inbound and its delivery, bounce "
        "and spam-complaint webhooks at /v1/webhooks/postmark.",
        param="body",
    )


def _addresses(full: Any) -> list[str]:
    if isinstance(full, dict):
        full = [full]
    if not isinstance(full, list):
        return []
    return [str(item.get("Email", "")) for item in full if isinstance(item, dict)]


class PostmarkInboundView(_PostmarkAuthMixin, PostmarkInboundWebhookView):
    """Reads the payload itself rather than through anymail's events: anymail would rebuild
    a MIME message from the JSON fields, which costs more than storing the email."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
        self._authenticate(request)
        try:
            payload = json_loads_bounded(request.body)
        except ValueError:
            raise _not_a_payload() from None
        # Postmark's other webhooks carry a RecordType; inbound payloads have none.
        if not isinstance(payload, dict) or payload.get("RecordType", "Inbound") != "Inbound":
            raise _not_a_payload()
        return JsonResponse({"received": True, "processed": self._receive(payload)})

    @staticmethod
    def _receive(payload: dict[str, Any]) -> int:
        raw_email = payload.get("RawEmail")
        try:
            # With "include raw email content" on, the exact MIME is kept; otherwise the
            # fields Postmark parsed are the message.
            parsed = (
                message_parse(raw_email.encode())
                if isinstance(raw_email, str)
                else postmark_message_parse(payload)
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            raise _not_a_payload() from None
        # OriginalRecipient is the envelope address Postmark delivered for; without it, the
        # header recipients are the best we have.
        recipients = [payload["OriginalRecipient"]] if payload.get("OriginalRecipient") else []
        recipients += [
            address
            for name in ("ToFull", "CcFull", "BccFull")
            for address in _addresses(payload.get(name))
        ]
        emails = inbound_deliver(parsed=parsed, recipients=recipients, source="postmark")
        if not emails:
            logger.info(
                "postmark_inbound_unknown_recipient recipients=%s message_id=%s",
                ",".join(recipients),
                payload.get("MessageID"),
            )
        return len(emails)


class PostmarkEventsView(_PostmarkAuthMixin, PostmarkTrackingWebhookView):
    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
        self._authenticate(request)
        processed = 0
        for event in self._events(request):
            normalized = self._normalize(event)
            if normalized is not None and delivery_event_apply(event=normalized) is not None:
                processed += 1
        return JsonResponse({"received": True, "processed": processed})

    @staticmethod
    def _normalize(event: AnymailTrackingEvent) -> ProviderEvent | None:
        """Delivery, Bounce and SpamComplaint records; opens, clicks and the rest are
        acknowledged and ignored."""
        payload: dict[str, Any] = event.esp_event
        record_type = payload.get("RecordType", "")
        bounce_type: BounceType | None = None
        if record_type == "Delivery":
            kind = EventKind.DELIVERED
        elif record_type == "SpamComplaint" or payload.get("Type") == "SpamComplaint":
            kind = EventKind.COMPLAINED
        elif record_type == "Bounce":
            kind = EventKind.BOUNCED
            bounce_type = (
                BounceType.HARD if payload.get("Type") in HARD_BOUNCE_TYPES else BounceType.SOFT
            )
        else:
            return None
        recipient = str(event.recipient or "")
        message_id = str(payload.get("MessageID") or event.message_id or "")
        # Bounces and complaints carry Postmark's own ID; deliveries do not, and one
        # message is delivered once per recipient.
        event_id = (
            f"postmark:{record_type}:{event.event_id}"
            if event.event_id
            else f"postmark:{record_type}:{message_id}:{recipient.lower()}"
        )
        metadata = payload.get("Metadata") or {}
        return ProviderEvent(
            kind=kind,
            provider_event_id=event_id,
            provider_message_id=message_id,
            recipient=recipient,
            occurred_at=event.timestamp or timezone.now(),
            bounce_type=bounce_type,
            email_id=str(metadata.get("email_id", "")) if isinstance(metadata, dict) else "",
            payload=json.loads(json.dumps(payload, default=str)),
        )
