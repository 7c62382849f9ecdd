"""Events for outgoing webhooks and the live stream: persisted first, delivered later.

``emit_event`` runs inside the caller's transaction, so an event exists exactly when the
change it describes was committed. Delivery (signing, retries, backoff) belongs to the
webhook delivery service, which picks up every PENDING row; the stream
(``GET /v1/events``, ``mailboxes.sse``) reads the ``AccountEvent`` rows.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from accounts.models import Account
from mailboxes import enqueue
from mailboxes.models import (
    AccountEvent,
    Mailbox,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)
from multimail.ids import new_id
from oversight.policy import event_hidden_from_agent


def emit_event(
    *,
    account: Account,
    event_type: WebhookEvent,
    data: dict[str, Any],
    mailbox: Mailbox | None = None,
) -> list[WebhookDelivery]:
    """Record the event for the account's live stream (unless it is about mail the agent
    may not see), and one delivery per interested target: account-wide subscriptions, the
    mailbox's own subscriptions, and the mailbox's ``webhook_url`` /
    ``oversight_webhook_url``."""
    event_id = new_id()
    payload = {
        "id": event_id,
        "type": str(event_type),
        "account_id": account.pk,
        "mailbox_id": mailbox.pk if mailbox else None,
        "data": data,
    }
    if not event_hidden_from_agent(data):
        AccountEvent.objects.create(
            account=account, mailbox=mailbox, event_type=str(event_type), payload=payload
        )
    targets: list[tuple[WebhookSubscription | None, str]] = []
    subscriptions = WebhookSubscription.objects.filter(account=account, is_active=True)
    subscriptions = subscriptions.filter(
        Q(mailbox__isnull=True) | Q(mailbox=mailbox) if mailbox else Q(mailbox__isnull=True)
    )
    for subscription in subscriptions:
        if str(event_type) in subscription.events:
            targets.append((subscription, subscription.url))
    if mailbox is not None:
        own_url = (
            mailbox.oversight_webhook_url
            if str(event_type).startswith("oversight.")
            else mailbox.webhook_url
        )
        if own_url:
            targets.append((None, own_url))
    deliveries = [
        WebhookDelivery(
            account=account,
            subscription=subscription,
            mailbox=mailbox,
            event_id=event_id,
            event_type=str(event_type),
            url=url,
            payload=payload,
        )
        for subscription, url in targets
    ]
    created = WebhookDelivery.objects.bulk_create(deliveries)
    for delivery in created:
        enqueue.deliver_webhook_after_commit(delivery.pk)
    return created
