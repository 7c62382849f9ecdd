"""``record_and_read`` (the event's INSERT and the subscriptions' SELECT in one statement)
stores the row and reads the subscriptions that the two statements of
``record_then_read`` do, whatever the payload and the subscriptions."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailboxes.events import record_and_read, record_then_read, subscriptions_of
from mailboxes.models import AccountEvent, Mailbox, WebhookEvent, WebhookSubscription
from tests.conftest import Tenant

# Text PostgreSQL's jsonb can hold (no NUL, no lone surrogates), as any event carries.
_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=8)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_text, children, max_size=3),
    max_leaves=8,
)
# Where a subscription listens: account-wide, the event's mailbox, another mailbox; active
# or not; for which events.
_subscription = st.tuples(
    st.sampled_from(["account", "mailbox", "other"]),
    st.booleans(),
    st.lists(st.sampled_from([str(event) for event in WebhookEvent]), min_size=1, max_size=3),
)


def _row(event_id: int) -> dict[str, Any]:
    row: dict[str, Any] = dict(AccountEvent.objects.filter(pk=event_id).values().get())
    del row["id"]
    return row


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.dictionaries(_text, _json, max_size=4),
    with_mailbox=st.booleans(),
    subscriptions=st.lists(_subscription, max_size=4),
)
def test_one_statement_writes_and_reads_what_two_do(
    owner: Tenant,
    data: dict[str, Any],
    with_mailbox: bool,
    subscriptions: list[tuple[str, bool, list[str]]],
) -> None:
    WebhookSubscription.objects.filter(account=owner.account).delete()
    other = Mailbox.objects.get_or_create(
        address="other@owner.multimail.localhost", defaults={"account": owner.account}
    )[0]
    for index, (scope, active, events) in enumerate(subscriptions):
        WebhookSubscription.objects.create(
            account=owner.account,
            mailbox={"account": None, "mailbox": owner.mailbox, "other": other}[scope],
            url=f"https://hooks.example/{index}",
            events=events,
            is_active=active,
            signing_secret="s",
        )
    mailbox = owner.mailbox if with_mailbox else None
    mailbox_id = mailbox.pk if mailbox else None
    at = timezone.now()
    payload = {"id": "e", "type": "message.received", "data": data}

    def record(how: Any) -> tuple[dict[str, Any], list[Any], int]:
        before = set(AccountEvent.objects.values_list("pk", flat=True))
        event = AccountEvent(
            account=owner.account,
            mailbox=mailbox,
            event_type="message.received",
            payload=payload,
            created_at=at,
        )
        with CaptureQueriesContext(connection) as queries:
            read = how(event, account_id=owner.account.pk, mailbox_id=mailbox_id)
        (stored,) = set(AccountEvent.objects.values_list("pk", flat=True)) - before
        return _row(stored), read, len(queries)

    apart, merged = record(record_then_read), record(record_and_read)
    assert merged[0] == apart[0]
    assert (
        merged[1]
        == apart[1]
        == subscriptions_of(account_id=owner.account.pk, mailbox_id=mailbox_id)
    )
    assert (apart[2], merged[2]) == (2, 1)
