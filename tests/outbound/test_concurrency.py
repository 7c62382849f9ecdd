"""Limits hold under concurrent requests: the counts and the insert happen under row locks."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from mailboxes.models import Direction, Email, EmailStatus, Mailbox
from multimail.ids import new_id
from tests.conftest import Tenant, start_and_join
from tests.outbound.conftest import body

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="row locks need PostgreSQL (the test setup)"
    ),
]

THREADS = 6


def _race(requests: list[Callable[[], Any]]) -> list[int]:
    barrier = threading.Barrier(len(requests))
    statuses: list[int] = []

    def run(request: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            statuses.append(request().status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(request,)) for request in requests]
    start_and_join(threads, timeout=60)
    return statuses


def test_concurrent_sends_do_not_overshoot_the_warmup_cap(
    owner: Tenant, api: Callable[..., APIClient]
) -> None:
    Email.objects.bulk_create(
        Email(
            account=owner.account,
            mailbox=owner.mailbox,
            direction=Direction.OUTBOUND,
            status=EmailStatus.SENT,
            from_address=owner.mailbox.address,
            to=["x@example.org"],
            thread_id=new_id(),
        )
        for _ in range(18)
    )  # day 1 allows 20: two slots left
    url = f"/v1/mailboxes/{owner.mailbox.pk}/send"
    clients = [api("send") for _ in range(THREADS)]
    statuses = _race(
        [
            lambda client=client, index=index: client.post(
                url, body(subject=f"race {index}"), format="json"
            )
            for index, client in enumerate(clients)
        ]
    )
    assert sorted(statuses) == [202, 202] + [429] * (THREADS - 2)
    assert Email.objects.filter(mailbox=owner.mailbox).count() == 20


def test_concurrent_creates_do_not_overshoot_the_plan(
    owner: Tenant, api: Callable[..., APIClient]
) -> None:
    clients = [api("admin") for _ in range(THREADS)]
    statuses = _race(
        [
            lambda client=client, index=index: client.post(
                "/v1/mailboxes", {"address_local": f"race{index}"}, format="json"
            )
            for index, client in enumerate(clients)
        ]
    )
    assert sorted(statuses) == [201] + [409] * (THREADS - 1)  # Starter: 2 mailboxes
    assert Mailbox.objects.filter(account=owner.account, is_active=True).count() == 2


def test_crossing_local_deliveries_do_not_deadlock(
    owner: Tenant, other: Tenant, api: Callable[..., APIClient]
) -> None:
    from accounts.services import api_key_create
    from tests.conftest import client_for

    _, other_key = api_key_create(account=other.account, name="x", scopes=["send"])
    requests: list[Callable[[], Any]] = []
    for index in range(THREADS // 2):
        mine, theirs = api("send"), client_for(other_key)
        requests.append(
            lambda client=mine, index=index: client.post(
                f"/v1/mailboxes/{owner.mailbox.pk}/send",
                body(to=[other.mailbox.address, "r@example.org"], subject=f"a{index}"),
                format="json",
            )
        )
        requests.append(
            lambda client=theirs, index=index: client.post(
                f"/v1/mailboxes/{other.mailbox.pk}/send",
                body(to=[owner.mailbox.address, "r@example.org"], subject=f"b{index}"),
                format="json",
            )
        )
    assert _race(requests) == [202] * len(requests)
    outbound = Email.objects.filter(direction=Direction.OUTBOUND)
    assert set(outbound.values_list("status", flat=True)) == {EmailStatus.SENT}
    assert Email.objects.filter(direction=Direction.INBOUND).count() == len(requests)
