"""The review screen: filters, the pane, the next email after a decision, every count."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Account
from mailboxes.models import Direction, Mailbox
from multimail.ids import new_id
from tests.conftest import client_for, key_for
from tests.console.conftest import card_version, held_email

HX = {"HX-Request": "true"}


def rows(body: str) -> list[str]:
    """The subjects of the listed rows, in order."""
    return re.findall(r'<span class="row-subject">([^<]*)</span>', body)


@pytest.fixture
def second_mailbox(owner):
    return Mailbox.objects.create(
        account=owner.account, address="sales@acme.multimail.localhost", oversight_mode="gated_all"
    )


def test_filters_narrow_the_list(owner, console, second_mailbox):
    now = timezone.now()
    held_email(owner.mailbox, subject="Old to Ann", to=["ann@client.example"],
               status_changed_at=now - timedelta(hours=30))  # fmt: skip
    held_email(
        owner.mailbox, subject="New to Bob", to=["bob@other.example"], cc=["x@client.example"]
    )
    held_email(second_mailbox, subject="Inbound one", direction=Direction.INBOUND,
               status_changed_at=now - timedelta(hours=2))  # fmt: skip
    everything = console.get("/console/").content.decode()
    assert rows(everything) == ["Old to Ann", "New to Bob", "Inbound one"]  # oldest first

    def listed(query: str) -> list[str]:
        response = console.get(f"/console/?{query}")
        assert response.status_code == 200
        return rows(response.content.decode())

    assert listed(f"mailbox={second_mailbox.pk}") == ["Inbound one"]
    assert listed("direction=outbound") == ["Old to Ann", "New to Bob"]
    assert listed("direction=inbound") == ["Inbound one"]
    # A domain matches any recipient list; a whole address only that address.
    assert listed("recipient=@client.example") == ["Old to Ann", "New to Bob"]
    assert listed("recipient=ann@client.example") == ["Old to Ann"]
    assert listed("recipient=@example") == []  # not a domain of any address
    assert listed("recipient=bob") == ["New to Bob"]
    assert listed("age=1h") == ["Old to Ann", "Inbound one"]
    assert listed("age=24h") == ["Old to Ann"]
    assert listed("age=24h&direction=inbound") == []
    assert listed("order=newest") == ["Inbound one", "New to Bob", "Old to Ann"]


def test_filters_keep_to_the_tenant_and_refuse_bad_values(owner, other, console):
    held_email(other.mailbox, subject="Globex secret")
    response = console.get(f"/console/?mailbox={other.mailbox.pk}", follow=True)
    body = response.content.decode()
    assert "code-invalid_parameter" in body
    assert "mailbox must be the id of one of your mailboxes." in body
    assert "Globex secret" not in body
    assert "code-invalid_parameter" in console.get("/console/?age=5m", follow=True).content.decode()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(value=st.text(max_size=400))
def test_any_recipient_text_is_listed_or_refused_never_an_error(owner, console, value):
    response = console.get("/console/", {"recipient": value}, follow=True)
    assert response.status_code == 200


def test_the_filter_form_shows_counts_per_mailbox(owner, console, second_mailbox):
    held_email(owner.mailbox)
    held_email(owner.mailbox)
    held_email(second_mailbox, direction=Direction.INBOUND)
    body = console.get("/console/").content.decode()
    counts = body[body.index('id="mailbox-counts"') :].split("</p>")[0]
    assert f'{owner.mailbox.address} <span class="count">2</span>' in counts
    assert f'{second_mailbox.address} <span class="count">1</span>' in counts
    assert "<title>Queue (3) · MultiMail</title>" in body
    assert 'aria-label="3 waiting">3</span>' in body


def test_an_item_opens_in_the_pane_or_as_a_page(owner, console):
    first = held_email(owner.mailbox, subject="First held")
    second = held_email(owner.mailbox, subject="Second held")
    page = console.get("/console/").content.decode()
    # The list links each email; the pane opens the oldest.
    assert f'href="/console/queue/{second.pk}"' in page
    assert f'hx-get="/console/queue/{second.pk}"' in page
    assert f'id="email-{first.pk}"' in page
    assert f'id="email-{second.pk}"' not in page
    # HTMX: only the pane's content.
    fragment = console.get(f"/console/queue/{second.pk}", headers=HX).content.decode()
    assert "<html" not in fragment
    assert f'id="email-{second.pk}"' in fragment
    assert "queue-row" not in fragment
    # Without JavaScript the link opens the queue page with that email in the pane.
    whole = console.get(f"/console/queue/{second.pk}?direction=outbound").content.decode()
    assert "<html" in whole
    assert f'id="email-{second.pk}"' in whole
    assert f'id="row-{first.pk}"' in whole
    assert 'name="direction" value="outbound"' in whole  # its forms carry the filters


@pytest.mark.django_db(transaction=True)
def test_after_a_decision_the_next_email_in_the_filters_opens(owner, console, second_mailbox):
    first = held_email(owner.mailbox, subject="One")
    held_email(second_mailbox, subject="Elsewhere")
    third = held_email(owner.mailbox, subject="Three")
    response = console.post(
        f"/console/queue/{first.pk}/decide",
        {"action": "reject", "version": card_version(console, first),
         "mailbox": owner.mailbox.pk},
        headers=HX,
    )  # fmt: skip
    body = response.content.decode()
    assert f'data-decided="{first.pk}"' in body
    assert "Rejected" in body
    # The next one in the same mailbox filter, skipping the other mailbox's email.
    assert f'id="email-{third.pk}"' in body
    assert "data-focus" in body.split(f'id="email-{third.pk}"')[1].split(">")[0]
    # Every count comes with it, all from one read.
    assert 'id="pending-badge" class="badge" hx-swap-oob="true" aria-label="2 waiting"' in body
    assert "<title>Queue (2) · MultiMail</title>" in body
    assert 'id="mailbox-counts"' in body
    assert 'id="approvals-badge"' in body
    # The last one decided: nothing else is waiting there.
    last = console.post(
        f"/console/queue/{third.pk}/decide",
        {"action": "reject", "version": card_version(console, third),
         "mailbox": owner.mailbox.pk},
        headers=HX,
    ).content.decode()  # fmt: skip
    assert "Nothing else is waiting in these filters." in last


@pytest.mark.django_db(transaction=True)
def test_without_javascript_a_decision_returns_to_the_same_filters(owner, console):
    email = held_email(owner.mailbox)
    response = console.post(
        f"/console/queue/{email.pk}/decide",
        {"action": "reject", "version": card_version(console, email), "direction": "outbound",
         "cursor": "ignored"},
    )  # fmt: skip
    assert response.status_code == 302
    assert response["Location"] == "/console/?direction=outbound"


@pytest.mark.django_db(transaction=True)
def test_a_failed_decision_says_why_in_the_pane(owner, console):
    email = held_email(owner.mailbox, subject="Decided elsewhere")
    waiting = held_email(owner.mailbox, subject="Still waiting")
    version = card_version(console, email)
    console.post(f"/console/queue/{email.pk}/decide", {"action": "reject", "version": version})
    again = console.post(
        f"/console/queue/{email.pk}/decide",
        {"action": "approve", "version": version},
        headers=HX,
    ).content.decode()
    assert "see the message above" not in again.lower()
    outcome = again[again.rindex("<p", 0, again.index('id="pane-outcome"')) :].split("</p>")[0]
    assert "code-already_decided" in outcome
    assert 'role="alert"' in outcome
    assert "data-focus" in outcome  # focus moves to the reason
    assert "Nothing was decided:" in outcome
    assert f'data-decided="{email.pk}"' in outcome  # its row leaves the list
    assert f'id="email-{waiting.pk}"' in again  # and the next one is open below
    # A bad action: the same email stays open, with the reason above it.
    bad = console.post(
        f"/console/queue/{waiting.pk}/decide", {"action": "maybe"}, headers=HX
    ).content.decode()
    assert "code-invalid_parameter" in bad
    assert 'data-decided=""' in bad
    assert f'id="email-{waiting.pk}"' in bad


def test_the_counts_endpoint_answers_every_count_and_204_when_unchanged(owner, console):
    held_email(owner.mailbox)
    first = console.get("/console/counts", headers=HX)
    body = first.content.decode()
    assert 'aria-label="1 waiting">1</span>' in body
    assert 'id="approvals-badge" class="badge" hidden' in body
    assert "<title>" not in body  # only the queue's title counts
    version = re.search(r"/console/counts\?v=(\w+)", body).group(1)
    assert console.get(f"/console/counts?v={version}", headers=HX).status_code == 204
    # An admin action an agent asks for: the Approvals badge follows.
    Account.objects.filter(pk=owner.account.pk).update(require_operator_approval=True)
    _, raw = key_for(owner.account, "admin")
    asked = client_for(raw).post(
        "/v1/api-keys", {"name": "Ops", "scopes": ["oversight"]}, format="json"
    )
    assert asked.status_code == 202, asked.content
    changed = console.get(f"/console/counts?v={version}", headers=HX).content.decode()
    assert (
        'id="approvals-badge" class="badge" hx-swap-oob="true" aria-label="1 awaiting approval">1'
        in changed
    )
    # Every other page polls it (the queue refreshes its counts with its list).
    assert "/console/counts?v=" in console.get("/console/mailboxes").content.decode()
    assert "/console/counts?v=" not in console.get("/console/").content.decode()


def test_polling_refreshes_the_list_with_every_count(owner, console):
    held_email(owner.mailbox)
    page = console.get("/console/?direction=outbound").content.decode()
    poll = re.search(r'hx-get="(/console/\?v=[^"]+)"', page).group(1).replace("&amp;", "&")
    assert "direction=outbound" in poll
    assert console.get(poll, headers=HX).status_code == 204
    held_email(owner.mailbox, subject="Arrived")
    held_email(owner.mailbox, subject="Inbound arrived", direction=Direction.INBOUND)
    body = console.get(poll, headers=HX).content.decode()
    assert rows(body) == ["Quarterly numbers", "Arrived"]  # the filter still applies
    assert "<title>Queue (3) · MultiMail</title>" in body  # the counts do not filter
    assert 'aria-label="3 waiting">3</span>' in body
    assert 'id="mailbox-counts" class="mailbox-counts" hx-swap-oob="true"' in body


def test_queue_page_query_count_does_not_grow_with_filters(owner, console, second_mailbox):
    def count(n: int) -> int:
        for index in range(n):
            held_email(owner.mailbox, to=[f"r{index}@client.example"])
            held_email(second_mailbox, direction=Direction.INBOUND, message_id=new_id())
        with CaptureQueriesContext(connection) as queries:
            response = console.get("/console/?direction=outbound&recipient=@client.example&age=")
            assert response.status_code == 200
        return len(queries)

    assert count(2) == count(12)


def test_pane_and_counts_query_counts_do_not_grow(owner, console, second_mailbox):
    email = held_email(owner.mailbox)

    def queries(path: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert console.get(path, headers=HX).status_code == 200
        return len(captured)

    small = (queries(f"/console/queue/{email.pk}"), queries("/console/counts"))
    for _ in range(10):
        held_email(owner.mailbox)
        held_email(second_mailbox)
    assert (queries(f"/console/queue/{email.pk}"), queries("/console/counts")) == small
