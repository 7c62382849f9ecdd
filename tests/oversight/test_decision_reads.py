"""A decision's precompiled reads return what the ORM's querysets returned.

Every decision locks the email's mailbox through the email (``decision_mailbox_locked``)
and then reads the email with its account's stop switch (``decision_email``). Over
generated mail (two accounts, a deleted mailbox, every direction and status, stopped
accounts or not) the instances, every loaded field and the annotation are the ORM's, an
email of another account finds no mailbox, and the mailbox row is really locked.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from django.db import connection, transaction
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Account
from mailboxes.models import Direction, Email, EmailStatus, Mailbox
from oversight import selectors
from oversight.selectors import decision_email, decision_mailbox_locked
from tests.conftest import Tenant, database_dsn, make_tenant
from tests.core.test_compiled_queries import _mailboxes, _snapshot
from tests.inbound.conftest import make_email

pytestmark = pytest.mark.django_db

_HYPOTHESIS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
_NO_SUCH_EMAIL = "01NOSUCHEMAIL0000000000000"


def _orm_mailbox(*, account_id: str, email_id: str) -> Mailbox | None:
    """The decision's lock as the ORM ran it before it was precompiled."""
    return (
        Mailbox.objects.select_for_update(no_key=True)
        .filter(
            pk__in=Email.objects.filter(account_id=account_id, pk=email_id).values("mailbox_id")
        )
        .first()
    )


def _email_answer(read: Any, email_id: str) -> Any:
    try:
        email = read(email_id)
    except Email.DoesNotExist:
        return "does not exist"
    return (_snapshot(email), email.account_sending_stopped)


@_HYPOTHESIS
@given(
    emails=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=3),  # which mailbox (see _mailboxes)
            st.sampled_from(Direction.values),
            st.sampled_from(EmailStatus.values),
        ),
        min_size=1,
        max_size=6,
    ),
    stopped=st.sampled_from([(), (0,), (1,), (0, 1)]),
)
def test_the_decisions_reads_are_the_orms(
    owner: Tenant, other: Tenant, emails: list[Any], stopped: tuple[int, ...]
) -> None:
    accounts = [owner.account, other.account]
    with transaction.atomic():
        Account.objects.filter(pk__in=[accounts[i].pk for i in stopped]).update(
            sending_stopped=True
        )
        mailboxes = _mailboxes(owner, other)
        made = [
            make_email(mailboxes[box], direction=direction, status=status)
            for box, direction, status in emails
        ]
        for email_id in [*(email.pk for email in made), _NO_SUCH_EMAIL]:
            for account in accounts:
                kwargs = {"account_id": account.pk, "email_id": email_id}
                assert _snapshot(decision_mailbox_locked(**kwargs)) == _snapshot(
                    _orm_mailbox(**kwargs)
                )
            assert _email_answer(lambda pk: decision_email(email_id=pk), email_id) == (
                _email_answer(
                    lambda pk: Email.objects.annotate(
                        account_sending_stopped=F("account__sending_stopped")
                    ).get(pk=pk),
                    email_id,
                )
            )
        transaction.set_rollback(True)


def test_each_is_one_compiled_statement(owner: Tenant) -> None:
    email = make_email(
        owner.mailbox, direction=Direction.OUTBOUND, status=EmailStatus.PENDING_SEND_APPROVAL
    )
    with transaction.atomic():
        decision_mailbox_locked(account_id=owner.account.pk, email_id=email.pk)
        decision_email(email_id=email.pk)
        with CaptureQueriesContext(connection) as queries:
            decision_mailbox_locked(account_id=owner.account.pk, email_id=email.pk)
            decision_email(email_id=email.pk)
    assert len(queries) == 2, [q["sql"] for q in queries.captured_queries]
    for compiled in (selectors._DECISION_MAILBOX, selectors._DECISION_EMAIL):
        assert compiled._cache
        assert None not in compiled._cache.values()


@pytest.mark.django_db(transaction=True)
def test_the_mailbox_stays_locked_and_the_email_does_not() -> None:
    """The decision queues on the mailbox row; the email row stays free for the delivery
    the winner hands off on commit."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's")
    tenant = make_tenant("decider")
    email = make_email(
        tenant.mailbox, direction=Direction.OUTBOUND, status=EmailStatus.PENDING_SEND_APPROVAL
    )
    with transaction.atomic():
        decision_mailbox_locked(account_id=tenant.account.pk, email_id=email.pk)
        decision_email(email_id=email.pk)
        with psycopg.connect(database_dsn()) as peer:
            with pytest.raises(psycopg.errors.LockNotAvailable):
                peer.execute(
                    "SELECT id FROM mailboxes_mailbox WHERE id = %s FOR UPDATE NOWAIT",
                    [tenant.mailbox.pk],
                )
            peer.rollback()
            for table, pk in (
                ("mailboxes_email", email.pk),
                ("accounts_account", tenant.account.pk),
            ):
                peer.execute(f"SELECT id FROM {table} WHERE id = %s FOR UPDATE NOWAIT", [pk])
                peer.rollback()
