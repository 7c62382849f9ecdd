"""The suppression page: search by address or domain, and an address added by hand."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import given
from hypothesis import strategies as st

from accounts.actors import Actor
from accounts.models import Account, ActorKind, AuditEntry
from mailboxes.models import Suppression
from mailboxes.services.suppression import suppression_add_by_operator
from multimail.addresses import address_problem
from multimail.errors import ApiError


def _suppress(tenant, address: str, reason: str = Suppression.Reason.COMPLAINT) -> Suppression:
    return Suppression.objects.create(account=tenant.account, email_address=address, reason=reason)


def test_add_an_address_by_hand(owner, console):
    response = console.post(
        "/console/suppression",
        {"address": "Ann@Example.com", "reason": "unsubscribe", "note": "Asked by phone"},
    )
    assert response.status_code == 302
    page = console.get(response["Location"]).content.decode()
    assert "ann@example.com is suppressed (Unsubscribed): mail to it is refused." in page
    entry = Suppression.objects.get(account=owner.account)
    assert (entry.email_address, entry.reason) == ("ann@example.com", "unsubscribe")
    audit = AuditEntry.objects.get(account=owner.account, action="suppression.added")
    assert audit.metadata == {"reason": "unsubscribe", "note": "Asked by phone"}
    assert audit.actor_kind == "operator"


def test_a_bad_address_is_refused_and_the_form_kept(owner, console):
    response = console.post(
        "/console/suppression", {"address": "not an address", "reason": "manual"}
    )
    assert response.status_code == 302
    page = console.get("/console/suppression").content.decode()
    assert "Enter a valid email address" in page
    assert 'value="not an address"' in page
    assert not Suppression.objects.filter(account=owner.account).exists()


def test_bounces_are_not_the_operators_to_record(owner, console):
    console.post("/console/suppression", {"address": "a@example.com", "reason": "hard_bounce"})
    assert not Suppression.objects.filter(account=owner.account).exists()
    page = console.get("/console/suppression").content.decode()
    assert "Select a valid choice" in page


def test_a_stronger_reason_already_listed_is_kept(owner, console):
    _suppress(owner, "gone@example.com", Suppression.Reason.HARD_BOUNCE)
    console.post("/console/suppression", {"address": "gone@example.com", "reason": "manual"})
    entry = Suppression.objects.get(account=owner.account)
    assert entry.reason == Suppression.Reason.HARD_BOUNCE


@pytest.mark.django_db
@given(address=st.text(max_size=40))
def test_the_service_refuses_what_the_address_judge_refuses(address):
    """Any text the one address judge refuses is refused before anything is written."""
    if address_problem(address.strip()) is None:
        return
    # An account never saved: validation comes before any read or write.
    actor = Actor(kind=ActorKind.OPERATOR, account=Account(name="Unsaved"))
    with pytest.raises(ApiError) as raised:
        suppression_add_by_operator(actor=actor, address=address, reason="manual")
    assert raised.value.code == "invalid_parameter"


def test_search_by_address_or_domain(owner, other, console):
    _suppress(owner, "ann@example.com")
    _suppress(owner, "bob@example.com")
    _suppress(owner, "carol@elsewhere.org")
    _suppress(other, "dan@example.com")
    by_domain = console.get("/console/suppression?q=example.com").content.decode()
    assert "ann@example.com" in by_domain
    assert "bob@example.com" in by_domain
    assert "carol@elsewhere.org" not in by_domain
    assert "dan@example.com" not in by_domain  # another tenant's
    by_address = console.get("/console/suppression?q=ANN@example.com").content.decode()
    assert "ann@example.com" in by_address
    assert "bob@example.com" not in by_address
    nothing = console.get("/console/suppression?q=dan@example.com").content.decode()
    assert "No suppressed address contains" in nothing


def test_search_pages_by_cursor_and_keeps_the_query(owner, console):
    for index in range(55):
        _suppress(owner, f"user{index}@example.com")
    _suppress(owner, "x@other.org")
    first = console.get("/console/suppression?q=example.com").content.decode()
    assert "More" in first
    link = first.split('class="pagination"><a href="?')[1].split('"')[0]
    assert link.startswith("q=example.com&amp;cursor=")
    second = console.get("/console/suppression?" + link.replace("&amp;", "&")).content.decode()
    assert second.count("@example.com</td>") == 5
    assert "x@other.org" not in second


def test_suppression_list_query_count(owner, console):
    def count(n: int) -> int:
        start = Suppression.objects.filter(account=owner.account).count()
        for index in range(n):
            _suppress(owner, f"q{start + index}@example.com")
        with CaptureQueriesContext(connection) as queries:
            assert console.get("/console/suppression?q=example").status_code == 200
        return len(queries)

    assert count(2) == count(60)
