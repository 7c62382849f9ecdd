"""One Idempotency-Key, many requests at once, on PostgreSQL: one email, and every other
answer is a replay of the first or a conflict, never ``duplicate_email``."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.actors import Actor
from mailboxes.models import Email, EmailStatus, OversightMode
from oversight.services import email_decide
from tests.conftest import Tenant, assert_error, start_and_join
from tests.outbound.conftest import body

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="row locks need PostgreSQL (the test setup)"
    ),
]

REQUESTS = 20


def _race(send: Callable[[], Any], count: int = REQUESTS) -> list[Any]:
    barrier = threading.Barrier(count)
    responses: list[Any] = []

    def run() -> None:
        barrier.wait()
        try:
            responses.append(send())
        finally:
            connection.close()

    start_and_join([threading.Thread(target=run) for _ in range(count)], timeout=60)
    assert len(responses) == count
    return responses


def _codes(responses: list[Any]) -> list[str]:
    return [
        response.json()["error"]["code"] if response.status_code >= 400 else "ok"
        for response in responses
    ]


def test_concurrent_sends_with_one_header_key_make_one_email(
    owner: Tenant, api: Callable[..., APIClient]
) -> None:
    client = api("send")
    url = f"/v1/mailboxes/{owner.mailbox.pk}/send"
    payload = body(subject="once")
    responses = _race(
        lambda: client.post(url, payload, format="json", HTTP_IDEMPOTENCY_KEY="one-key")
    )
    assert Email.objects.filter(mailbox=owner.mailbox).count() == 1
    email = Email.objects.get(mailbox=owner.mailbox)
    first = [r for r in responses if r.status_code == 202 and "Idempotent-Replayed" not in r]
    assert len(first) == 1
    assert first[0].json()["id"] == email.pk
    for response in responses:
        if response is first[0]:
            continue
        if response.status_code == 409:
            error = assert_error(response, "idempotency_conflict", param="Idempotency-Key")
            assert "in flight" in error["message"]
        else:
            assert response.status_code == 202, response.content
            assert response["Idempotent-Replayed"] == "true"
            assert response.json() == first[0].json()
    assert "duplicate_email" not in _codes(responses)
    # Once the first answered, every retry replays it.
    again = client.post(url, payload, format="json", HTTP_IDEMPOTENCY_KEY="one-key")
    assert again.status_code == 202
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first[0].json()


def test_concurrent_sends_with_one_body_key_make_one_email(
    owner: Tenant, api: Callable[..., APIClient]
) -> None:
    """The body's ``idempotency_key`` (the public API's own): the later sends answer the
    original id as ``already_sent``; the mailbox row lock orders them."""
    client = api("send")
    url = f"/v1/mailboxes/{owner.mailbox.pk}/send"
    payload = body(subject="once", idempotency_key="body-key")
    responses = _race(lambda: client.post(url, payload, format="json"))
    email = Email.objects.get(mailbox=owner.mailbox)
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * (REQUESTS - 1) + [202]
    for response in responses:
        assert response.json()["id"] == email.pk


def test_another_body_with_the_key_is_a_conflict_not_a_duplicate(
    owner: Tenant, api: Callable[..., APIClient]
) -> None:
    client = api("send")
    url = f"/v1/mailboxes/{owner.mailbox.pk}/send"
    assert client.post(url, body(), format="json", HTTP_IDEMPOTENCY_KEY="k").status_code == 202
    # Same recipients, subject and body within 60 s would be duplicate_email without a key;
    # with the key and another body it is the key's conflict.
    changed = client.post(url, body(cc=["x@example.org"]), format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert_error(changed, "idempotency_conflict", param="Idempotency-Key")
    assert Email.objects.filter(mailbox=owner.mailbox).count() == 1


def test_after_the_operator_rejected_the_email_the_key_still_replays(
    owner: Tenant, api: Callable[..., APIClient]
) -> None:
    owner.mailbox.oversight_mode = OversightMode.GATED_SEND
    owner.mailbox.save(update_fields=["oversight_mode"])
    client = api("send")
    url = f"/v1/mailboxes/{owner.mailbox.pk}/send"
    payload = body(subject="held")
    first = client.post(url, payload, format="json", HTTP_IDEMPOTENCY_KEY="held-key")
    assert first.status_code == 202
    email = Email.objects.get(pk=first.json()["id"])
    assert email.status == EmailStatus.PENDING_SEND_APPROVAL
    email_decide(actor=Actor.for_operator(owner.operator), email_id=email.pk, action="reject")
    retries = _race(
        lambda: client.post(url, payload, format="json", HTTP_IDEMPOTENCY_KEY="held-key"), 5
    )
    for retry in retries:
        assert retry.status_code == 202
        assert retry["Idempotent-Replayed"] == "true"
        assert retry.json() == first.json()
    assert Email.objects.filter(mailbox=owner.mailbox).count() == 1
    email.refresh_from_db()
    assert email.status == EmailStatus.REJECTED
