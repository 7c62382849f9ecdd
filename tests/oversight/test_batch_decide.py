"""POST /v1/oversight/decide with email_ids: several emails decided the same way, each on
its own, with one result per id; racing single decisions still leaves one winner each."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection
from django.test import TestCase
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import AuditEntry
from mailboxes.models import EmailStatus
from tests.conftest import Tenant, assert_error, client_for, key_for, start_and_join
from tests.oversight.conftest import held

DECIDE = "/v1/oversight/decide"


def _decide(client: Any, payload: dict[str, Any]) -> Any:
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(DECIDE, payload, format="json")


def test_each_email_gets_its_own_result(owner: Tenant, other: Tenant, api) -> None:
    first, second = held(owner.mailbox), held(owner.mailbox)
    decided = held(owner.mailbox)
    client = api("oversight")
    assert _decide(client, {"email_id": decided.pk, "action": "reject"}).status_code == 200
    foreign = held(other.mailbox)
    response = _decide(
        client,
        {"email_ids": [first.pk, decided.pk, foreign.pk, second.pk], "action": "approve"},
    )
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert results[0] == {"email_id": first.pk, "status": "approved_and_sent"}
    assert results[1]["email_id"] == decided.pk
    assert results[1]["error"]["code"] == "already_decided"
    assert results[2]["email_id"] == foreign.pk
    assert results[2]["error"]["code"] == "not_found"
    assert results[3] == {"email_id": second.pk, "status": "approved_and_sent"}
    for email in (first, second):
        email.refresh_from_db()
        assert email.status == EmailStatus.SENT
    foreign.refresh_from_db()
    assert foreign.status == EmailStatus.PENDING_SEND_APPROVAL
    assert AuditEntry.objects.filter(action="email.approved").count() == 2


def test_a_version_per_id_is_checked(owner: Tenant, api) -> None:
    reader = api("oversight_read")
    first, second = held(owner.mailbox), held(owner.mailbox)
    pending = {e["id"]: e["version"] for e in reader.get("/v1/oversight/pending").json()["emails"]}
    response = _decide(
        api("oversight"),
        {
            "email_ids": [first.pk, second.pk],
            "action": "reject",
            "versions": {first.pk: pending[first.pk], second.pk: "stale"},
        },
    )
    results = response.json()["results"]
    assert results[0] == {"email_id": first.pk, "status": "rejected"}
    assert results[1]["error"]["code"] == "conflict"
    second.refresh_from_db()
    assert second.status == EmailStatus.PENDING_SEND_APPROVAL


def test_bad_batches_are_refused_before_anything_is_decided(owner: Tenant, api) -> None:
    email = held(owner.mailbox)
    client = api("oversight")
    cases = [
        ({"action": "approve"}, "missing_parameter", "email_id"),
        ({"email_ids": [], "action": "approve"}, "invalid_parameter", "email_ids"),
        ({"email_ids": ["x"] * 2, "action": "approve"}, "invalid_parameter", "email_ids"),
        (
            {"email_ids": [f"id{n}" for n in range(101)], "action": "approve"},
            "invalid_parameter",
            "email_ids",
        ),
        (
            {"email_id": email.pk, "email_ids": [email.pk], "action": "approve"},
            "invalid_parameter",
            "email_ids",
        ),
        (
            {"email_ids": [email.pk], "versions": {"other": "v"}, "action": "approve"},
            "invalid_parameter",
            "versions",
        ),
        ({"email_ids": [email.pk], "action": "maybe"}, "invalid_parameter", "action"),
    ]
    for payload, code, param in cases:
        assert_error(_decide(client, payload), code, param=param)
    email.refresh_from_db()
    assert email.status == EmailStatus.PENDING_SEND_APPROVAL


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    ids=st.lists(st.text(min_size=1, max_size=70), max_size=110),
    versions=st.dictionaries(st.text(max_size=5), st.text(max_size=70), max_size=3),
)
def test_any_batch_is_answered_per_id_or_refused_whole(owner: Tenant, api, ids, versions) -> None:
    response = _decide(
        api("oversight"), {"email_ids": ids, "versions": versions, "action": "reject"}
    )
    if response.status_code == 200:
        results = response.json()["results"]
        # Ids are read as text fields: surrounding whitespace is not part of an id.
        assert [result["email_id"] for result in results] == [i.strip() for i in ids]
        assert all(result["error"]["code"] == "not_found" for result in results)
    else:
        assert response.json()["error"]["code"] in ("invalid_parameter", "missing_parameter")


@pytest.mark.django_db(transaction=True)
def test_a_batch_racing_single_decisions_has_one_winner_per_email(owner: Tenant) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    emails = [held(owner.mailbox, subject=f"Race {n}") for n in range(8)]
    ids = [email.pk for email in emails]
    _, raw = key_for(owner.account, "oversight")
    wins: list[str] = []
    lock = threading.Lock()

    def batch() -> None:
        try:
            response = client_for(raw).post(
                DECIDE, {"email_ids": ids, "action": "reject"}, format="json"
            )
            with lock:
                wins.extend(r["email_id"] for r in response.json()["results"] if "status" in r)
        finally:
            connection.close()

    def single(email_id: str) -> None:
        try:
            response = client_for(raw).post(
                DECIDE, {"email_id": email_id, "action": "reject"}, format="json"
            )
            if response.status_code == 200:
                with lock:
                    wins.append(email_id)
            else:
                assert response.json()["error"]["code"] == "already_decided"
        finally:
            connection.close()

    threads = [threading.Thread(target=batch)]
    threads += [threading.Thread(target=single, args=(email_id,)) for email_id in reversed(ids)]
    start_and_join(threads, timeout=60)
    assert sorted(wins) == sorted(ids)  # each email decided exactly once
    for email in emails:
        email.refresh_from_db()
        assert email.status == EmailStatus.REJECTED
    assert AuditEntry.objects.filter(action="email.rejected").count() == len(ids)
