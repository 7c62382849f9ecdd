"""The send's precompiled reads return what the ORM's querysets returned.

Every accepted send takes the mailbox lock (``mailbox_locked``: the mailbox and its
account FOR NO KEY UPDATE, the subscription and whether a recipient is suppressed in the
same statement) and, without an idempotency key, the duplicate check (``recent_send_id``).
Over generated data (two accounts, a deleted mailbox, subscriptions or none, suppressed
addresses, emails inside, outside and exactly at the edge of the window, every status) the
answers are those of the ORM querysets they replaced, and the same rows are locked.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from django.db import connection, transaction
from django.db.models import Exists, Model, OuterRef
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.models import Subscription
from mailboxes import selectors
from mailboxes.models import Direction, Email, EmailStatus, Mailbox, Suppression
from mailboxes.selectors import active_mailboxes, mailbox_locked, recent_send_id
from tests.conftest import Tenant, database_dsn, make_tenant
from tests.core.test_compiled_queries import _mailboxes
from tests.inbound.conftest import make_email

pytestmark = pytest.mark.django_db

_HYPOTHESIS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
_ADDRESSES = ["a@example.org", "b@example.org", "c@example.net", "d@example.com"]
_NO_SUCH_MAILBOX = "01NOSUCHMAILBOX00000000000"


def _orm_mailbox_locked(
    *, account_id: str, mailbox_id: str, with_subscription: bool, suppressed_among: Any
) -> Mailbox | None:
    """mailbox_get(for_update=True, ...) as the ORM ran it before it was precompiled."""
    queryset = (
        active_mailboxes(account=account_id)
        .filter(pk=mailbox_id)
        .select_for_update(no_key=True, of=("self", "account"))
        .select_related("account", *(["account__subscription"] if with_subscription else []))
    )
    if suppressed_among is not None:
        queryset = queryset.annotate(
            any_suppressed=Exists(
                Suppression.objects.filter(
                    account_id=OuterRef("account_id"), email_address__in=suppressed_among
                )
            )
        )
    return queryset.first()


def _tree(obj: Model | None, ancestors: tuple[Model, ...] = ()) -> Any:
    """Everything an instance holds (as tests.core.test_compiled_queries._snapshot), for
    rows that point back at one another (a subscription caches the account it was joined
    from): a related row that is an ancestor is named by its depth."""
    if obj is None:
        return None
    for depth, ancestor in enumerate(ancestors):
        if ancestor is obj:
            return ("ancestor", depth)
    state = obj._state
    return (
        type(obj),
        {
            f.attname: obj.__dict__[f.attname]
            for f in obj._meta.concrete_fields
            if f.attname in obj.__dict__
        },
        sorted(obj.get_deferred_fields()),
        state.adding,
        state.db,
        {name: _tree(value, (*ancestors, obj)) for name, value in state.fields_cache.items()},
    )


def _answer(mailbox: Mailbox | None) -> Any:
    return (_tree(mailbox), getattr(mailbox, "any_suppressed", "absent"))


@_HYPOTHESIS
@given(
    suppressed=st.lists(
        st.tuples(st.integers(min_value=0, max_value=1), st.sampled_from(_ADDRESSES)),
        max_size=5,
        unique=True,
    ),
    recipients=st.lists(
        st.frozensets(st.sampled_from(_ADDRESSES), min_size=1, max_size=3), max_size=3
    ),
    subscribed=st.sampled_from([(), (0,), (0, 1)]),
)
def test_the_send_lock_is_the_orms(
    owner: Tenant,
    other: Tenant,
    suppressed: list[tuple[int, str]],
    recipients: list[frozenset[str]],
    subscribed: tuple[int, ...],
) -> None:
    accounts = [owner.account, other.account]
    with transaction.atomic():
        mailboxes = _mailboxes(owner, other)
        for index, address in suppressed:
            Suppression.objects.create(
                account=accounts[index], email_address=address, reason="manual"
            )
        for index in subscribed:
            Subscription.objects.create(account=accounts[index], plan="pro", status="active")
        for account in accounts:
            for mailbox_id in [*(m.pk for m in mailboxes), _NO_SUCH_MAILBOX]:
                for with_subscription in (False, True):
                    for among in [None, *recipients]:
                        kwargs = {
                            "account_id": account.pk,
                            "mailbox_id": mailbox_id,
                            "with_subscription": with_subscription,
                            "suppressed_among": among,
                        }
                        assert _answer(mailbox_locked(**kwargs)) == _answer(
                            _orm_mailbox_locked(**kwargs)
                        )
        transaction.set_rollback(True)


def _orm_recent_send_id(*, mailbox_id: str, content_hash: str, since: datetime) -> str | None:
    """The duplicate check as the ORM ran it before it was precompiled."""
    return (
        Email.objects.filter(
            mailbox_id=mailbox_id,
            direction=Direction.OUTBOUND,
            content_hash=content_hash,
            received_at__gte=since,
        )
        .exclude(status__in=(EmailStatus.REJECTED, EmailStatus.CANCELLED))
        .values_list("pk", flat=True)
        .first()
    )


@_HYPOTHESIS
@given(
    emails=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=3),  # which mailbox (see _mailboxes)
            st.sampled_from(Direction.values),
            st.sampled_from(EmailStatus.values),
            st.sampled_from(["hash-a", "hash-b"]),
            # Microseconds before now: inside, at the edge of and outside the 60 seconds.
            st.sampled_from([0, 1, 59_999_999, 60_000_000, 60_000_001, 3_600_000_000]),
        ),
        max_size=7,
    ),
    zone=st.sampled_from([UTC, ZoneInfo("America/New_York"), ZoneInfo("Asia/Kolkata")]),
)
def test_the_duplicate_check_is_the_orms(
    owner: Tenant, other: Tenant, emails: list[Any], zone: Any
) -> None:
    now = timezone.now()
    with transaction.atomic():
        mailboxes = _mailboxes(owner, other)
        for box, direction, status, digest, before in emails:
            make_email(
                mailboxes[box],
                direction=direction,
                status=status,
                content_hash=digest,
                received_at=now - timedelta(microseconds=before),
            )
        for mailbox_id in [*(m.pk for m in mailboxes), _NO_SUCH_MAILBOX]:
            for digest in ("hash-a", "hash-b", "hash-c"):
                for window in (1, 60_000_000, 60_000_001):
                    # The same instant in any zone: the cutoff does not move with it.
                    since = (now - timedelta(microseconds=window)).astimezone(zone)
                    kwargs = {"mailbox_id": mailbox_id, "content_hash": digest, "since": since}
                    assert recent_send_id(**kwargs) == _orm_recent_send_id(**kwargs)
        transaction.set_rollback(True)


def test_both_are_compiled_and_one_statement_each(owner: Tenant) -> None:
    """On PostgreSQL neither falls back to the ORM: the recipients are one array parameter
    and the cutoff one datetime parameter, whatever their values."""
    since = timezone.now() - timedelta(seconds=60)
    with transaction.atomic():
        for among in ({"a@example.org"}, {"a@example.org", "b@example.org", "c@example.net"}):
            mailbox_locked(
                account_id=owner.account.pk,
                mailbox_id=owner.mailbox.pk,
                with_subscription=True,
                suppressed_among=among,
            )
            recent_send_id(mailbox_id=owner.mailbox.pk, content_hash="x", since=since)
        with CaptureQueriesContext(connection) as queries:
            mailbox_locked(
                account_id=owner.account.pk,
                mailbox_id=owner.mailbox.pk,
                with_subscription=True,
                suppressed_among={"d@example.com", "e@example.com"},
            )
            recent_send_id(mailbox_id=owner.mailbox.pk, content_hash="y", since=since)
    assert len(queries) == 2, [q["sql"] for q in queries.captured_queries]
    for compiled in (selectors._MAILBOX_LOCKED, selectors._RECENT_SEND):
        assert compiled._cache
        assert None not in compiled._cache.values()


def test_the_compiled_sql_is_the_orms(owner: Tenant) -> None:
    values = {
        "account_id": owner.account.pk,
        "mailbox_id": owner.mailbox.pk,
        "with_subscription": True,
        "suppressed_among": {"a@example.org", "b@example.org"},
    }
    with transaction.atomic():
        with CaptureQueriesContext(connection) as compiled:
            selectors._MAILBOX_LOCKED.rows(**values)
        with CaptureQueriesContext(connection) as orm:
            list(selectors._MAILBOX_LOCKED.queryset(**values))
    assert compiled[0]["sql"] == orm[0]["sql"]


@pytest.mark.django_db(transaction=True)
def test_the_mailbox_and_account_stay_locked_and_the_subscription_does_not() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's")
    tenant = make_tenant("locker")
    subscription = Subscription.objects.create(account=tenant.account, plan="pro", status="active")
    with transaction.atomic():
        mailbox_locked(
            account_id=tenant.account.pk,
            mailbox_id=tenant.mailbox.pk,
            with_subscription=True,
            suppressed_among={"a@example.org"},
        )
        with psycopg.connect(database_dsn()) as peer:
            for table, pk in (
                ("mailboxes_mailbox", tenant.mailbox.pk),
                ("accounts_account", tenant.account.pk),
            ):
                with pytest.raises(psycopg.errors.LockNotAvailable):
                    peer.execute(f"SELECT id FROM {table} WHERE id = %s FOR UPDATE NOWAIT", [pk])
                peer.rollback()
            peer.execute(
                "SELECT id FROM billing_subscription WHERE id = %s FOR UPDATE NOWAIT",
                [subscription.pk],
            )
            peer.rollback()
