"""GET /v1/oversight/pending: the queue, its scopes, paging and tenant isolation."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from mailboxes.models import Direction, EmailStatus
from tests.conftest import Tenant, assert_error
from tests.oversight.conftest import held, make_email

PUBLIC_FIELDS = (
    "id",
    "mailbox_id",
    "direction",
    "from",
    "to",
    "subject",
    "body_markdown",
    "status",
    "received_at",
)


def test_lists_pending_emails_of_both_directions_newest_first(owner: Tenant, api) -> None:
    outbound = held(owner.mailbox, subject="Out")
    inbound = held(owner.mailbox, direction=Direction.INBOUND, subject="In")
    make_email(owner.mailbox, status=EmailStatus.SENT)  # decided mail is not listed

    response = api("oversight_read").get("/v1/oversight/pending")

    assert response.status_code == 200
    body = response.json()
    assert [item["id"] for item in body["emails"]] == [inbound.pk, outbound.pk]
    assert body["cursor"] is None
    item = body["emails"][1]
    # The public API's fields keep their shape; the decision facts are additive.
    public = {key: item[key] for key in PUBLIC_FIELDS}
    assert public == {
        "id": outbound.pk,
        "mailbox_id": owner.mailbox.pk,
        "direction": "outbound",
        "from": owner.mailbox.address,
        "to": ["client@example.org"],
        "subject": "Out",
        "body_markdown": "Hello **there**",
        "status": "pending_send_approval",
        "received_at": item["received_at"],
    }
    assert item["received_at"].endswith("Z")
    assert set(item) - set(PUBLIC_FIELDS) == {
        "cc",
        "bcc",
        "reply_to",
        "headers",
        "send_at",
        "gate_timing",
        "hold_reason",
        "attachments",
        "links",
        "spam",
        "first_contact",
        "sent_by_key",
        "replying_to",
        "warnings",
        "version",
        "oversight_decision",
    }


def test_oversight_scope_also_lists(owner: Tenant, api) -> None:
    held(owner.mailbox)
    assert len(api("oversight").get("/v1/oversight/pending").json()["emails"]) == 1


def test_send_or_read_key_cannot_list(api) -> None:
    for scopes in (("send",), ("read",), ("admin",)):
        response = api(*scopes).get("/v1/oversight/pending")
        assert_error(response, "insufficient_permissions", required_scope="oversight_read")


def test_without_key_is_authentication_required(client) -> None:
    assert_error(client.get("/v1/oversight/pending"), "authentication_required")


def test_another_tenants_pending_mail_is_not_listed(owner: Tenant, other: Tenant, api) -> None:
    held(other.mailbox)
    assert api("oversight").get("/v1/oversight/pending").json()["emails"] == []


def test_pages_with_cursor(owner: Tenant, api) -> None:
    emails = [held(owner.mailbox, subject=f"n{i}") for i in range(5)]
    client = api("oversight_read")
    first = client.get("/v1/oversight/pending", {"limit": 2}).json()
    second = client.get("/v1/oversight/pending", {"limit": 2, "cursor": first["cursor"]}).json()
    third = client.get("/v1/oversight/pending", {"limit": 2, "cursor": second["cursor"]}).json()
    ids = [e["id"] for page in (first, second, third) for e in page["emails"]]
    assert ids == [e.pk for e in reversed(emails)]
    assert third["cursor"] is None


def test_bad_cursor_and_limit(api) -> None:
    client = api("oversight_read")
    assert_error(
        client.get("/v1/oversight/pending", {"cursor": "nope"}), "invalid_parameter", param="cursor"
    )
    assert_error(
        client.get("/v1/oversight/pending", {"limit": 0}), "invalid_parameter", param="limit"
    )


def test_query_count_does_not_grow_with_page_size(owner: Tenant, api) -> None:
    client = api("oversight_read")
    held(owner.mailbox)
    client.get("/v1/oversight/pending")  # warm-up: key touch and today's usage row exist

    with CaptureQueriesContext(connection) as small:
        client.get("/v1/oversight/pending", {"limit": 1})
    for i in range(10):
        held(owner.mailbox, subject=f"more {i}")
    with CaptureQueriesContext(connection) as large:
        response = client.get("/v1/oversight/pending", {"limit": 50})

    assert len(response.json()["emails"]) == 11
    assert len(large.captured_queries) == len(small.captured_queries)
    email_queries = [q for q in large.captured_queries if "mailboxes_email" in q["sql"]]
    assert len(email_queries) == 1
