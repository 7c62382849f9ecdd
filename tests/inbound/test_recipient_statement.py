"""The inbound recipients' statement, precompiled, returns what the ORM returns.

``recipient_mailboxes`` finds the active mailboxes among an arriving message's recipients,
with their accounts and the copy each already stored under the Message-ID (the
idempotency of a retried webhook). These tests hold its answers equal to the ORM queryset
it replaced, over generated mail: several accounts, an inactive mailbox, unknown and empty
addresses, repeated ones, a dozen recipients, copies stored under other Message-IDs and
outbound mail under the same one, and a Message-ID longer than the column keeps.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailboxes import selectors
from mailboxes.models import Direction, Email, EmailStatus, Mailbox
from tests.conftest import Tenant
from tests.core.test_compiled_queries import _snapshot
from tests.inbound.conftest import make_email

pytestmark = pytest.mark.django_db

# Longer than the 998 characters stored: the lookup must cut it as the stored copy was.
_LONG_ID = "<" + "x" * 1200 + "@example.org>"
_MESSAGE_IDS = ["<one@example.org>", "<two@example.org>", _LONG_ID]
_UNKNOWN = [f"nobody{index}@nowhere.example" for index in range(6)]
_HYPOTHESIS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _mailboxes(owner: Tenant, other: Tenant) -> list[Mailbox]:
    """The owner's mailbox, a second and a third, an inactive one, and the other tenant's."""
    extra = [
        Mailbox.objects.create(
            account=owner.account, address=f"box{index}@acme.multimail.localhost"
        )
        for index in range(2)
    ]
    inactive = Mailbox.objects.create(
        account=owner.account,
        address="gone@acme.multimail.localhost",
        is_active=False,
        deleted_at=timezone.now(),
    )
    return [owner.mailbox, *extra, inactive, other.mailbox]


def _orm_recipient_mailboxes(*, addresses: list[str], message_id: str) -> QuerySet[Mailbox]:
    """The queryset inbound delivery ran before its statement was precompiled."""
    copies = Email.objects.filter(
        mailbox_id=OuterRef("pk"), direction=Direction.INBOUND, message_id=message_id[:998]
    )
    return (
        Mailbox.objects.filter(address__in=set(addresses) - {""}, is_active=True)
        .select_related("account")
        .annotate(stored_copy_id=Subquery(copies.values("pk")[:1]))
    )


def _answer(pairs: list[tuple[Mailbox, str | None]]) -> list[Any]:
    return sorted(((_snapshot(m), copy) for m, copy in pairs), key=lambda item: item[0][1]["id"])


@_HYPOTHESIS
@given(
    copies=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=4),  # which mailbox (see _mailboxes)
            st.sampled_from(Direction.values),
            st.integers(min_value=0, max_value=len(_MESSAGE_IDS) - 1),
        ),
        max_size=6,
        unique_by=lambda copy: (copy[0], copy[2]),  # (mailbox, Message-ID) is unique
    ),
    picks=st.lists(st.integers(min_value=0, max_value=11), max_size=14),
)
def test_the_recipients_are_the_orms(
    owner: Tenant, other: Tenant, copies: list[Any], picks: list[int]
) -> None:
    with transaction.atomic():
        mailboxes = _mailboxes(owner, other)
        for box, direction, message in copies:
            make_email(
                mailboxes[box],
                direction=direction,
                status=EmailStatus.UNREAD if direction == Direction.INBOUND else EmailStatus.SENT,
                message_id=_MESSAGE_IDS[message][:998],
            )
        # Known, inactive, unknown and empty addresses, some repeated: up to 12 distinct.
        pool = [mailbox.address for mailbox in mailboxes] + _UNKNOWN + [""]
        addresses = [pool[pick] for pick in picks]
        for message_id in [*_MESSAGE_IDS, "<never-stored@example.org>"]:
            got = selectors.recipient_mailboxes(addresses=addresses, message_id=message_id)
            expected = _orm_recipient_mailboxes(addresses=addresses, message_id=message_id)
            assert _answer(got) == _answer([(m, m.stored_copy_id) for m in expected])
        transaction.set_rollback(True)


def test_each_count_of_recipients_is_one_statement(owner: Tenant, other: Tenant) -> None:
    """Any count of distinct addresses is one statement of one compiled shape (an array
    parameter), never a reused one missing some addresses."""
    addresses = [mailbox.address for mailbox in _mailboxes(owner, other)]
    active = [mailbox.pk for mailbox in Mailbox.objects.filter(is_active=True)]
    for count in [1, 3, 5, 2, 5, 1]:
        with CaptureQueriesContext(connection) as captured:
            found = selectors.recipient_mailboxes(
                addresses=addresses[:count], message_id="<a@example.org>"
            )
        assert len(captured) == 1
        assert {mailbox.pk for mailbox, _ in found} == {
            mailbox.pk for mailbox in Mailbox.objects.filter(address__in=addresses[:count])
        } & set(active)
    assert len(selectors._RECIPIENT_MAILBOXES._cache) == 1
    assert None not in selectors._RECIPIENT_MAILBOXES._cache.values()


def test_no_address_is_no_statement(owner: Tenant) -> None:
    with CaptureQueriesContext(connection) as captured:
        assert selectors.recipient_mailboxes(addresses=["", ""], message_id="<a@x>") == []
    assert not captured


def test_the_compiled_sql_is_the_orms(owner: Tenant, other: Tenant) -> None:
    """The statement is the very one the ORM would send: the queryset is its definition."""
    addresses = [owner.mailbox.address, other.mailbox.address]
    values = {"message_id": "<a@example.org>", "addresses": addresses}
    with CaptureQueriesContext(connection) as compiled:
        selectors._RECIPIENT_MAILBOXES.rows(**values)
    with CaptureQueriesContext(connection) as orm:
        list(selectors._RECIPIENT_MAILBOXES.queryset(**values))
    assert compiled[0]["sql"] == orm[0]["sql"]
