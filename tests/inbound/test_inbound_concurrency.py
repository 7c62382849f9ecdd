"""Concurrent deliveries of one message (a Postmark retry racing the first attempt, or the
webhook and SMTP paths at once) store it once: the unique (mailbox, Message-ID) constraint
decides, and the losers answer with the stored copy."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from mailboxes.models import Email
from mailboxes.quotas import storage_reconcile
from mailboxes.services.inbound.receive import inbound_receive
from tests.conftest import Tenant, start_and_join
from tests.inbound.conftest import build_mime

pytestmark = pytest.mark.django_db(transaction=True)


def test_parallel_deliveries_store_one_email(owner: Tenant) -> None:
    raw = build_mime(to=owner.mailbox.address, message_id="<race@example.org>")
    start = threading.Barrier(4)
    results: list[str] = []
    errors: list[BaseException] = []

    def deliver() -> None:
        try:
            start.wait()
            [email] = inbound_receive(raw=raw, recipients=[owner.mailbox.address], source="race")
            results.append(email.pk)
        except BaseException as exc:  # collected and re-raised in the test thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    start_and_join(threads, timeout=30)
    assert errors == []
    assert len(results) == 4
    assert len(set(results)) == 1
    assert Email.objects.filter(mailbox=owner.mailbox).count() == 1
    # The losers' transactions stored nothing, so the bytes were counted once.
    stored, exact = storage_reconcile(account_id=owner.account.pk)
    assert stored == exact > 0
