"""The outbound worker's precompiled reads return what the ORM's querysets returned.

Each email's scan reads it in pending_scan (``email_in_status``) and locks its sender
(``sender_locked``: the mailbox and its account, FOR NO KEY UPDATE, in one statement);
its delivery looks up which recipients are mailboxes of this server (``mailbox_ids_at``).
Over generated mail (several mailboxes of two accounts, every direction and status), the
instances, every loaded field and the joined account are the ORM's, and the lock is
really taken.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailboxes.models import Direction, Email, EmailStatus, Mailbox
from mailboxes.selectors import email_in_status, mailbox_ids_at, sender_locked
from tests.conftest import Tenant, database_dsn, make_tenant
from tests.core.test_compiled_queries import _mailboxes, _snapshot
from tests.inbound.conftest import make_email

_HYPOTHESIS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.mark.django_db
@_HYPOTHESIS
@given(
    emails=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=3),
            st.sampled_from(Direction.values),
            st.sampled_from(EmailStatus.values),
        ),
        min_size=1,
        max_size=6,
    ),
    asked=st.sampled_from(EmailStatus.values),
)
def test_the_workers_reads_are_the_orms(
    owner: Tenant, other: Tenant, emails: list[Any], asked: str
) -> None:
    with transaction.atomic():
        mailboxes = _mailboxes(owner, other)
        made = [
            make_email(mailboxes[index], direction=direction, status=status)
            for index, direction, status in emails
        ]
        for email_id in [*(e.pk for e in made), "01NOSUCHEMAIL0000000000000"]:
            orm = Email.objects.filter(pk=email_id, status=asked).first()
            assert _snapshot(
                email_in_status(email_id=email_id, status=EmailStatus(asked))
            ) == _snapshot(orm)
        for mailbox in mailboxes:
            orm_mailbox = Mailbox.objects.select_related("account").get(pk=mailbox.pk)
            assert _snapshot(sender_locked(mailbox_id=mailbox.pk)) == _snapshot(orm_mailbox)
        with pytest.raises(Mailbox.DoesNotExist):
            sender_locked(mailbox_id="01NOSUCHMAILBOX00000000000")
        transaction.set_rollback(True)


@pytest.mark.django_db
@_HYPOTHESIS
@given(picked=st.lists(st.integers(min_value=0, max_value=5), max_size=8))
def test_the_local_recipients_are_the_orms(owner: Tenant, other: Tenant, picked: list[int]) -> None:
    with transaction.atomic():
        mailboxes = _mailboxes(owner, other)
        # Every mailbox's address (one of them deleted), an unknown one and an empty one.
        candidates = [m.address for m in mailboxes] + ["nobody@nowhere.example", ""]
        addresses = [candidates[index] for index in picked]
        orm = dict(
            Mailbox.objects.filter(address__in=addresses, is_active=True).values_list(
                "address", "pk"
            )
        )
        assert mailbox_ids_at(addresses=addresses) == orm
        transaction.set_rollback(True)


@pytest.mark.django_db
def test_each_is_one_statement(owner: Tenant) -> None:
    email = make_email(owner.mailbox, direction=Direction.OUTBOUND, status=EmailStatus.PENDING_SCAN)
    with transaction.atomic():
        email_in_status(email_id=email.pk, status=EmailStatus.PENDING_SCAN)
        sender_locked(mailbox_id=owner.mailbox.pk)
        with CaptureQueriesContext(connection) as queries:
            email_in_status(email_id=email.pk, status=EmailStatus.PENDING_SCAN)
            sender_locked(mailbox_id=owner.mailbox.pk)
            mailbox_ids_at(addresses=[owner.mailbox.address, "nobody@nowhere.example"])
    assert len(queries) == 3, [q["sql"] for q in queries.captured_queries]


@pytest.mark.django_db(transaction=True)
def test_the_sender_and_its_account_stay_locked_until_the_commit() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's")
    tenant = make_tenant("locker")
    with transaction.atomic():
        sender_locked(mailbox_id=tenant.mailbox.pk)
        with psycopg.connect(database_dsn()) as other:
            for table, pk in (
                ("mailboxes_mailbox", tenant.mailbox.pk),
                ("accounts_account", tenant.account.pk),
            ):
                with pytest.raises(psycopg.errors.LockNotAvailable):
                    other.execute(f"SELECT id FROM {table} WHERE id = %s FOR UPDATE NOWAIT", [pk])
                other.rollback()
