"""Twenty decisions at once on one email, each in its own thread and PostgreSQL connection:
exactly one wins, the others are told it was already decided, and the email is sent once."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection

from accounts.actors import Actor
from billing.models import UsageDaily, UsageEventType
from mailboxes.models import Direction, Email, EmailStatus
from multimail.errors import ApiError
from oversight.services import email_decide
from tests.conftest import Tenant, client_for, key_for, start_and_join

THREADS = 20


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs real row locks")
@pytest.mark.parametrize("mixed", [False, True], ids=["all-approve", "approve-and-reject"])
def test_twenty_concurrent_decisions_have_one_winner(
    transactional_db: Any, owner: Tenant, other: Tenant, mixed: bool
) -> None:
    owner.mailbox.oversight_mode = "gated_send"
    owner.mailbox.save()
    _, raw = key_for(owner.account, "send")
    response = client_for(raw).post(
        f"/v1/mailboxes/{owner.mailbox.pk}/send",
        {"to": [other.mailbox.address], "subject": "Race", "markdown": "Only once"},
        format="json",
    )
    email_id = response.json()["id"]
    assert Email.objects.get(pk=email_id).status == EmailStatus.PENDING_SEND_APPROVAL

    barrier = threading.Barrier(THREADS)
    results: list[str] = []
    lock = threading.Lock()

    def decide(index: int) -> None:
        actor = Actor.for_operator(owner.operator)
        action = "reject" if mixed and index % 2 else "approve"
        try:
            barrier.wait()
            decision = email_decide(actor=actor, email_id=email_id, action=action)
            outcome = str(decision.status)
        except ApiError as error:
            outcome = f"{error.code}:{error.extra.get('status')}"
        finally:
            connection.close()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=decide, args=(i,)) for i in range(THREADS)]
    start_and_join(threads, timeout=60)

    winners = [r for r in results if not r.startswith("already_decided")]
    assert len(results) == THREADS
    assert len(winners) == 1, results
    decided = "rejected" if winners[0] == "rejected" else "approved"
    assert results.count(f"already_decided:{decided}") == THREADS - 1

    email = Email.objects.get(pk=email_id)
    copies = Email.objects.filter(mailbox=other.mailbox, direction=Direction.INBOUND).count()
    actions = UsageDaily.objects.get(
        account=owner.account, event_type=UsageEventType.OVERSIGHT_ACTIONS
    )
    assert actions.count == 1
    if not mixed:
        assert winners == ["approved_and_sent"]
    if decided == "approved":
        assert email.status == EmailStatus.SENT
        assert copies == 1
    else:
        assert email.status == EmailStatus.REJECTED
        assert copies == 0
