"""The console's oversight rules editor: save (POST/redirect/GET, no code for the operator,
loosening included), errors naming the rule, and the dry run next to what happened."""

from __future__ import annotations

import json
from typing import Any

import pytest

from accounts.models import AuditEntry
from mailboxes.models import Direction, Email, EmailStatus
from multimail.ids import new_id
from tests.conftest import Tenant

pytestmark = pytest.mark.django_db

APPROVE_TEAM = {
    "name": "team",
    "direction": "outbound",
    "match": {"recipients": ["@acme.example"]},
    "action": "approve",
}
REFUSE_EVIL = {
    "name": "no evil",
    "direction": "outbound",
    "match": {"recipients": ["@evil.example"]},
    "action": "refuse",
}


def _url(tenant: Tenant) -> str:
    return f"/console/mailboxes/{tenant.mailbox.pk}/rules"


def _sent(tenant: Tenant, to: str, **fields: Any) -> Email:
    return Email.objects.create(
        account=tenant.account,
        mailbox=tenant.mailbox,
        direction=Direction.OUTBOUND,
        status=EmailStatus.SENT,
        from_address=tenant.mailbox.address,
        to=[to],
        subject=f"To {to}",
        thread_id=new_id(),
        decided_by="mode",
        **fields,
    )


def test_the_operator_saves_loosening_rules_without_a_code(owner: Tenant, console) -> None:
    owner.account.require_operator_approval = True
    owner.account.save()
    response = console.post(f"{_url(owner)}/save", {"rules": json.dumps([APPROVE_TEAM])})
    assert response.status_code == 302
    assert response["Location"] == _url(owner)
    owner.mailbox.refresh_from_db()
    assert owner.mailbox.oversight_rules == [APPROVE_TEAM]
    page = console.get(_url(owner)).content.decode()
    assert "Saved 1 rule." in page
    assert "&quot;team&quot;" in page
    entry = AuditEntry.objects.get(action="mailbox.oversight_rules_replaced")
    assert entry.actor_kind == "operator"
    assert entry.metadata["loosening"] == ["adds the approve rule 'team'"]


def test_a_bad_rule_is_named_and_what_was_typed_is_kept(owner: Tenant, console) -> None:
    typed = json.dumps([APPROVE_TEAM, {**REFUSE_EVIL, "action": "ban"}])
    response = console.post(f"{_url(owner)}/save", {"rules": typed})
    assert response.status_code == 302
    page = console.get(_url(owner)).content.decode()
    assert "rules[1].action" in page
    assert "ban" in page  # the text area shows what was typed
    owner.mailbox.refresh_from_db()
    assert owner.mailbox.oversight_rules == []
    # Not JSON at all: the form says so.
    console.post(f"{_url(owner)}/save", {"rules": "[{"})
    assert "not valid JSON" in console.get(_url(owner)).content.decode()


def test_dry_run_shows_what_the_rules_would_do_next_to_what_happened(
    owner: Tenant, console
) -> None:
    owner.mailbox.oversight_mode = "gated_send"
    owner.mailbox.save()
    team = _sent(owner, "ann@acme.example")
    evil = _sent(owner, "eve@evil.example")
    typed = json.dumps([APPROVE_TEAM, REFUSE_EVIL])
    fragment = console.get(_url(owner), {"rules": typed}, headers={"HX-Request": "true"})
    html = fragment.content.decode()
    assert html.lstrip().startswith('<section class="panel" id="dry-run"')
    assert "sent by rule &#x27;team&#x27;" in html
    assert "refused by rule &#x27;no evil&#x27;" in html
    assert html.count("(differs)") == 1
    assert team.subject in html
    assert evil.subject in html
    # Nothing was saved.
    owner.mailbox.refresh_from_db()
    assert owner.mailbox.oversight_rules == []
    # Without JavaScript the same button loads the whole page with the table.
    page = console.get(_url(owner), {"rules": typed}).content.decode()
    assert "<h1>Oversight rules</h1>" in page
    assert "refused by rule" in page


def test_dry_run_names_a_bad_rule(owner: Tenant, console) -> None:
    typed = json.dumps([{**APPROVE_TEAM, "match": {"recipients": ["nobody"]}}])
    html = console.get(_url(owner), {"rules": typed}, headers={"HX-Request": "true"})
    assert "rules[0].match.recipients[0]" in html.content.decode()


def test_dry_run_costs_the_same_queries_for_many_emails(
    owner: Tenant, console, django_assert_max_num_queries
) -> None:
    for index in range(30):
        _sent(owner, f"person{index}@acme.example")
    typed = json.dumps([APPROVE_TEAM])
    with django_assert_max_num_queries(20):
        console.get(_url(owner), {"rules": typed}, headers={"HX-Request": "true"})


def test_the_email_page_and_the_queue_say_who_decided(owner: Tenant, console) -> None:
    sent = _sent(owner, "ann@acme.example")
    Email.objects.filter(pk=sent.pk).update(decided_by="rule", decided_rule="team")
    page = console.get(f"/console/mailboxes/{owner.mailbox.pk}/emails/{sent.pk}")
    assert "the rule “team”" in page.content.decode()
    held = _sent(owner, "eve@evil.example")
    Email.objects.filter(pk=held.pk).update(
        status=EmailStatus.PENDING_SEND_APPROVAL, decided_by="rule", decided_rule="strangers"
    )
    assert "the rule “strangers”" in console.get("/console/").content.decode()
