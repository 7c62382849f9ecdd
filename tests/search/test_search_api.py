"""Full-text search through ``GET /v1/mailboxes/{id}/emails?q=``, on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from mailboxes.models import Direction, EmailStatus
from mailboxes.search import MAX_QUERY_LENGTH
from mailboxes.services.inbound.receive import inbound_receive
from tests.conftest import Tenant, assert_error, make_tenant
from tests.inbound.conftest import build_mime, make_email

pytestmark = pytest.mark.django_db

Api = Callable[..., APIClient]


def url(tenant: Tenant) -> str:
    return f"/v1/mailboxes/{tenant.mailbox.pk}/emails"


def found(client: APIClient, tenant: Tenant, q: str, **params: Any) -> list[str]:
    response = client.get(url(tenant), {"q": q, **params})
    assert response.status_code == 200, response.json()
    return [row["id"] for row in response.json()["emails"]]


def test_each_field_is_searched(owner: Tenant, api: Api) -> None:
    by_subject = make_email(owner.mailbox, subject="Quarterly invoice")
    by_body = make_email(owner.mailbox, text="the zeppelin arrives on Tuesday")
    by_sender = make_email(owner.mailbox, from_address="walrus@fjord.example")
    by_recipient = make_email(owner.mailbox, cc=["narwhal@fjord.example"])
    by_attachment = make_email(
        owner.mailbox, has_attachments=True, attachment_names="contract-draft.pdf"
    )
    make_email(owner.mailbox, subject="Unrelated")
    client = api("read")
    assert found(client, owner, "invoice") == [by_subject.pk]
    assert found(client, owner, "zeppelin") == [by_body.pk]
    assert found(client, owner, "walrus") == [by_sender.pk]
    assert found(client, owner, "narwhal") == [by_recipient.pk]
    assert found(client, owner, "contract") == [by_attachment.pk]
    # An address is found by its domain too.
    assert set(found(client, owner, "fjord.example")) == {by_sender.pk, by_recipient.pk}


def test_mail_stored_by_the_services_is_found_by_its_attachment_names(
    owner: Tenant, api: Api
) -> None:
    raw = build_mime(
        to=owner.mailbox.address,
        subject="Scans",
        attachments=[("Q3-report.pdf", "application/pdf", b"%PDF-1.4")],
    )
    [received] = inbound_receive(raw=raw, recipients=[owner.mailbox.address], source="test")
    sent = api("send").post(
        f"/v1/mailboxes/{owner.mailbox.pk}/send",
        {
            "to": ["client@example.org"],
            "subject": "Your quote",
            "markdown": "Attached.",
            "attachments": [
                {"name": "quote-1042.txt", "content_type": "text/plain", "content_base64": "aGk="}
            ],
        },
        format="json",
    )
    assert sent.status_code == 202, sent.json()
    client = api("read")
    assert found(client, owner, "report") == [received.pk]
    assert found(client, owner, "q3-report.pdf") == [received.pk]
    assert found(client, owner, "quote-1042") == [sent.json()["id"]]


def test_outbound_markdown_is_searched_before_it_is_rendered(owner: Tenant, api: Api) -> None:
    draft = make_email(
        owner.mailbox,
        direction=Direction.OUTBOUND,
        status=EmailStatus.PENDING_SCAN,
        markdown="Meet at the **lighthouse**",
    )
    assert found(api("read"), owner, "lighthouse") == [draft.pk]


def test_syntax_phrases_exclusions_from_and_to(owner: Tenant, api: Api) -> None:
    exact = make_email(owner.mailbox, subject="red apple pie", from_address="ann@orchard.example")
    swapped = make_email(owner.mailbox, subject="apple red pie", to=["bob@market.example"])
    other = make_email(owner.mailbox, subject="red apple tart", from_address="bob@market.example")
    client = api("read")
    assert set(found(client, owner, '"red apple"')) == {exact.pk, other.pk}
    assert found(client, owner, '"red apple" -tart') == [exact.pk]
    assert set(found(client, owner, 'red -"apple pie"')) == {swapped.pk, other.pk}
    assert found(client, owner, "apple from:ann") == [exact.pk]
    assert found(client, owner, "apple from:market.example") == [other.pk]
    # to: is the recipients (To and Cc), not the sender.
    assert found(client, owner, "apple to:bob") == [swapped.pk]
    assert found(client, owner, "FROM:Ann APPLE") == [exact.pk]


def test_results_are_ranked_and_page_with_a_stable_cursor(owner: Tenant, api: Api) -> None:
    # The subject weighs more than the body: those come first, newest first among equals.
    in_body = [make_email(owner.mailbox, subject="note", text="kiwi") for _ in range(3)]
    in_subject = [make_email(owner.mailbox, subject="kiwi", text="note") for _ in range(3)]
    client = api("read")
    expected = [e.pk for e in in_subject[::-1]] + [e.pk for e in in_body[::-1]]
    assert found(client, owner, "kiwi") == expected
    seen: list[str] = []
    cursor = None
    for _ in range(4):
        params = {"q": "kiwi", "limit": 2, **({"cursor": cursor} if cursor else {})}
        body = client.get(url(owner), params).json()
        seen += [row["id"] for row in body["emails"]]
        cursor = body["cursor"]
        if cursor is None:
            break
        # Mail arriving between pages neither repeats nor hides a row of this search.
        make_email(owner.mailbox, subject="kiwi kiwi kiwi")
    assert seen == expected


def test_q_combines_with_the_other_filters(owner: Tenant, api: Api) -> None:
    unread = make_email(owner.mailbox, subject="budget")
    read = make_email(owner.mailbox, subject="budget", status=EmailStatus.READ)
    client = api("read")
    assert found(client, owner, "budget", status="read") == [read.pk]
    assert found(client, owner, "budget", since_id=unread.pk) == [read.pk]
    assert found(client, owner, "budget", has_attachments="true") == []


def test_the_agent_never_finds_mail_it_may_not_read(api: Api) -> None:
    gated = make_tenant("gated", mode="gated_all")
    held = make_email(gated.mailbox, subject="secret", status=EmailStatus.PENDING_INBOUND_APPROVAL)
    make_email(gated.mailbox, subject="secret", status=EmailStatus.REJECTED)
    approved = make_email(gated.mailbox, subject="secret")
    client = api("read", account=gated.account)
    assert found(client, gated, "secret") == [approved.pk]
    # Listed without q, the held email still shows (its summary only), as before.
    listed = [row["id"] for row in client.get(url(gated)).json()["emails"]]
    assert held.pk in listed


def test_other_tenants_mail_is_not_found(owner: Tenant, other: Tenant, api: Api) -> None:
    make_email(other.mailbox, subject="private")
    assert found(api("read"), owner, "private") == []
    response = api("read").get(url(other), {"q": "private"})
    assert_error(response, "not_found", resource="mailbox")


@pytest.mark.parametrize(
    "q",
    [
        '"unbalanced',
        "-only -exclusions",
        "   ",
        '""',
        "!!! ---",
        "x" * (MAX_QUERY_LENGTH + 1),
        " ".join(f"w{i}" for i in range(21)),
        "nul\x00byte",
    ],
)
def test_malformed_queries_are_invalid_parameter(owner: Tenant, api: Api, q: str) -> None:
    assert_error(api("read").get(url(owner), {"q": q}), "invalid_parameter", param="q")


def test_a_cursor_from_another_list_is_refused(owner: Tenant, api: Api) -> None:
    for _ in range(3):
        make_email(owner.mailbox)
    client = api("read")
    plain = client.get(url(owner), {"limit": 1}).json()["cursor"]
    response = client.get(url(owner), {"q": "stored", "cursor": plain})
    assert_error(response, "invalid_parameter", param="cursor")


def test_search_query_count_does_not_grow_with_page_size(
    owner: Tenant, api: Api, django_assert_num_queries: Any
) -> None:
    client = api("read")
    for _ in range(3):
        make_email(owner.mailbox, subject="tally")
    client.get(url(owner), {"q": "tally"})  # warm-up: creates the day's usage row
    with django_assert_num_queries(5, exact=False) as small:
        client.get(url(owner), {"q": "tally", "limit": 1})
    for _ in range(30):
        make_email(owner.mailbox, subject="tally", attachment_names="a.txt")
    with django_assert_num_queries(len(small.captured_queries)):
        response = client.get(url(owner), {"q": "tally", "limit": 30})
    assert len(response.json()["emails"]) == 30


# Pieces of the syntax and the characters each engine's query language treats specially.
_query_text = st.lists(
    st.sampled_from([*"ab \"'-:*&|!()\\<>@._éß^{}", "from:", "to:", "NOT", "AND"]),
    max_size=30,
).map("".join)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(q=_query_text | st.text(max_size=80))
def test_any_query_answers_200_or_invalid_parameter(owner: Tenant, api: Api, q: str) -> None:
    """Never a 500: a query either searches or is refused as q."""
    response = api("read").get(url(owner), {"q": q})
    if response.status_code != 200:
        assert_error(response, "invalid_parameter", param="q")


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    words=st.lists(
        st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1, max_size=12),
        min_size=1,
        max_size=5,
    ),
    negate=st.booleans(),
    field=st.sampled_from(["", "from:", "to:"]),
)
def test_a_valid_query_never_errors(
    owner: Tenant, api: Api, words: list[str], negate: bool, field: str
) -> None:
    q = f'{field}{words[0]} "{" ".join(words)}"' + (f" -{words[-1]}" if negate else "")
    response = api("read").get(url(owner), {"q": q})
    assert response.status_code == 200, response.json()
