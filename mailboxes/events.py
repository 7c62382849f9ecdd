"""Events for outgoing webhooks and the live stream: persisted first, delivered later.

``emit_event`` runs inside the caller's transaction, so an event exists exactly when the
change it describes was committed. Delivery (signing, retries, backoff) belongs to the
webhook delivery service, which picks up every PENDING row; the stream
(``GET /v1/events``, ``mailboxes.sse``) reads the ``AccountEvent`` rows.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import connection
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
from multimail.inserts import insert_columns, insert_values
from multimail.statements import hot_cursor
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
    mailbox_id = mailbox.pk if mailbox else None
    if event_hidden_from_agent(data):
        subscribed = subscriptions_of(account_id=account.pk, mailbox_id=mailbox_id)
    else:
        event = AccountEvent(
            account=account, mailbox=mailbox, event_type=str(event_type), payload=payload
        )
        record = record_and_read if connection.vendor == "postgresql" else record_then_read
        subscribed = record(event, account_id=account.pk, mailbox_id=mailbox_id)
    targets: list[tuple[str | None, str]] = [
        (subscription_id, url)
        for subscription_id, url, events in subscribed
        if str(event_type) in events
    ]
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
            subscription_id=subscription_id,
            mailbox=mailbox,
            event_id=event_id,
            event_type=str(event_type),
            url=url,
            payload=payload,
        )
        for subscription_id, url in targets
    ]
    created = WebhookDelivery.objects.bulk_create(deliveries)
    for delivery in created:
        enqueue.deliver_webhook_after_commit(delivery.pk)
    return created


# (id, url, events) of a webhook subscription.
Subscribed = tuple[str, str, list[str]]


def subscriptions_of(*, account_id: str, mailbox_id: str | None) -> list[Subscribed]:
    """The active subscriptions an event of the account (about ``mailbox_id``) may go to:
    the account-wide ones and the mailbox's own."""
    scope = Q(mailbox__isnull=True)
    if mailbox_id is not None:
        scope |= Q(mailbox_id=mailbox_id)
    return list(
        WebhookSubscription.objects.filter(scope, account_id=account_id, is_active=True)
        .order_by("-id")
        .values_list("id", "url", "events")
    )


def record_then_read(
    event: AccountEvent, *, account_id: str, mailbox_id: str | None
) -> list[Subscribed]:
    """Store ``event``, then read ``subscriptions_of``: two statements."""
    event.save(force_insert=True)
    return subscriptions_of(account_id=account_id, mailbox_id=mailbox_id)


def record_and_read(
    event: AccountEvent, *, account_id: str, mailbox_id: str | None
) -> list[Subscribed]:
    """``record_then_read`` in one statement (PostgreSQL): the INSERT runs as a WITH of the
    SELECT. Every event pays for this pair, and the ORM's building of the two statements
    cost three times the CPU of the rest of ``emit_event``. The row is the one ``save``
    writes (each column prepared as Django prepares it for an INSERT; the id the database
    gives it is not read back, nobody uses it), the rows read those of ``subscriptions_of``
    (tests/events/test_record_and_read.py holds both equal)."""
    quote = connection.ops.quote_name
    columns = insert_columns(AccountEvent)
    values = insert_values(event, connection)
    scope = "mailbox_id IS NULL" + (" OR mailbox_id = %s" if mailbox_id is not None else "")
    sql = (
        f"WITH recorded AS (INSERT INTO {quote(AccountEvent._meta.db_table)} "  # noqa: S608 (model names only)
        f"({', '.join(quote(str(field.column)) for field in columns)}) "
        f"VALUES ({', '.join(['%s'] * len(columns))})) "
        "SELECT id, url, events::text "
        f"FROM {quote(WebhookSubscription._meta.db_table)} "
        f"WHERE account_id = %s AND is_active AND ({scope}) ORDER BY id DESC"
    )
    params = [*values, account_id, *([mailbox_id] if mailbox_id is not None else [])]
    with hot_cursor(connection) as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [(id_, url, json.loads(events)) for id_, url, events in rows]
