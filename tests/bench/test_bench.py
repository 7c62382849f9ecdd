"""The bench's own pieces, untimed: the stock-DRF peer answers with the same rows as /v1
(so comparing the two compares like with like), and the table prints a result set."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.services import api_key_create
from bench import table
from mailboxes.models import Email
from tests.conftest import Tenant
from tests.inbound.conftest import make_email

pytestmark = [pytest.mark.django_db, pytest.mark.urls("bench.urls")]


def _client(tenant: Tenant, *scopes: str) -> APIClient:
    client = APIClient()
    raw = api_key_create(account=tenant.account, name="bench", scopes=list(scopes))[1]
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def _ids(page: list[dict[str, Any]]) -> list[str]:
    return [row["id"] for row in page]


def test_peer_lists_the_same_rows_as_v1_page_after_page(owner: Tenant, other: Tenant) -> None:
    for n in range(25):
        make_email(owner.mailbox, subject=f"Email {n}")
    make_email(other.mailbox, subject="Another tenant's")
    client = _client(owner, "read")
    v1 = client.get(f"/v1/mailboxes/{owner.mailbox.pk}/emails").json()
    peer = client.get(f"/bench/peer/mailboxes/{owner.mailbox.pk}/emails").json()

    assert _ids(peer["results"]) == _ids(v1["emails"])
    assert len(peer["results"]) == 20
    v1_next = client.get(
        f"/v1/mailboxes/{owner.mailbox.pk}/emails", {"cursor": v1["cursor"]}
    ).json()
    peer_next = client.get(peer["next"]).json()
    assert _ids(peer_next["results"]) == _ids(v1_next["emails"])
    assert len(peer_next["results"]) == 5


def test_peer_reads_the_same_email_as_v1(owner: Tenant, other: Tenant) -> None:
    email = make_email(owner.mailbox, subject="One email")
    client = _client(owner, "read")
    v1 = client.get(f"/v1/mailboxes/{owner.mailbox.pk}/emails/{email.pk}").json()
    peer = client.get(f"/bench/peer/mailboxes/{owner.mailbox.pk}/emails/{email.pk}").json()

    assert (peer["id"], peer["subject"], peer["from_address"], peer["to"]) == (
        v1["id"],
        v1["subject"],
        v1["from"],
        v1["to"],
    )
    theirs = make_email(other.mailbox)
    assert (
        client.get(f"/bench/peer/mailboxes/{other.mailbox.pk}/emails/{theirs.pk}").status_code
        == 404
    )


def test_peer_send_stores_an_email_that_v1_reads(owner: Tenant) -> None:
    client = _client(owner, "send", "read")
    response = client.post(
        f"/bench/peer/mailboxes/{owner.mailbox.pk}/send",
        {"to": ["customer@example.org"], "subject": "Order 1", "markdown": "Confirmed."},
        format="json",
    )

    assert response.status_code == 201, response.content
    email = Email.objects.get(pk=response.json()["id"])
    assert (email.mailbox_id, email.from_address) == (owner.mailbox.pk, owner.mailbox.address)
    v1 = client.get(f"/v1/mailboxes/{owner.mailbox.pk}/emails/{email.pk}").json()
    assert v1["subject"] == "Order 1"


def test_peer_refuses_a_wrong_key(owner: Tenant) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer mm_live_notakeyatall000000000")
    assert client.get(f"/bench/peer/mailboxes/{owner.mailbox.pk}/emails").status_code in (
        401,
        403,
    )


def test_the_table_prints_one_row_per_scenario_with_spread_ratio_and_peer() -> None:
    plain = [table.Window(1000, 10, 20, server_cpu_ms=0.8), table.Window(800, 12, 25)]
    one = [
        table.Window(300, 40, 90, server_cpu_ms=4.0, database_cpu_ms=0.5),
        table.Window(200, 50, 110, lopsided=True, server_cpu_ms=5.0, database_cpu_ms=0.7),
    ]
    rows: list[table.Measured | table.PipelineRow] = [
        table.Measured(
            "GET one email",
            queries="2",
            plain=plain,
            rounds=one,
            peer_rounds=[table.Window(150, 60, 120), table.Window(100, 70, 130)],
        ),
        table.Measured("POST send", queries="8", plain=plain, rounds=[table.Window(90, 150, 230)]),
        table.PipelineRow(
            "drain a backlog (2 workers)", 151.4, 1500, 2900, "1000/1000 delivered", 9.5, 4.25
        ),
    ]
    cpu = {
        "plain view": table.Cpu(0.5, 1),
        "GET one email": table.Cpu(1.5, 2),
        table.peer_label("GET one email"): table.Cpu(3.0, 2),
        "send, 100k sent this month": table.Cpu(5.0, 9),
    }

    lines = table.render(rows, cpu, baseline="plain view").splitlines()

    assert lines[0] == "| " + " | ".join(table.COLUMNS) + " |"
    assert lines[2] == (
        "| plain view | 900 (800-1000) | 11.0 | 22.5 | 100% | 0.50 | 0.40 | 0.00 | 1 "
        "| - | - | - | - |"
    )
    # Ratios are per round, against that round's plain window: 300/1000 and 200/800; the
    # peer's the same way, against the peer's window of the round.
    assert lines[3] == (
        "| GET one email | 250 (200-300) ! | 45.0 | 100.0 | 28% (25-30%) | 1.50 | 4.50 | 0.60 "
        "| 2 | 125 (100-150) | 3.00 | 2.00 (2.00-2.00) | 0.50 |"
    )
    assert lines[4] == (
        "| POST send | 90 | 150.0 | 230.0 | 9% | - | 0.00 | 0.00 | 8 | - | - | - | - |"
    )
    assert lines[5] == (
        "| drain a backlog (2 workers) | 151 emails/s | 1.5 s | 2.9 s | - | - | 9.5/email "
        "| 4.2/email | - | - | - | - | - |"
    )
    assert lines[6] == (
        "| send, 100k sent this month | - | - | - | - | 5.00 | - | - | 9 | - | - | - | - |"
    )
    assert lines[8] == "drain a backlog (2 workers): 1000/1000 delivered"
    assert lines[9].startswith("! a window stayed lopsided")
