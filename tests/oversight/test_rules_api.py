"""``/v1/mailboxes/{id}/oversight-rules``: reading, replacing, validation naming each bad
rule's index and field, and loosening that needs the operator (202, then approval_code)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail
from django.test import TestCase
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.actors import Actor
from accounts.models import AdminActionRequest, AuditEntry
from oversight.admin_actions import admin_action_approve
from oversight.rules import MAX_RULES
from tests.conftest import Tenant, assert_error

pytestmark = pytest.mark.django_db

CODE = re.compile(r"^\s{4}([A-Z0-9]{3}-[A-Z0-9]{3}-[A-Z0-9]{3})$", re.MULTILINE)
HOLD_STRANGERS = {
    "name": "strangers",
    "direction": "outbound",
    "match": {"first_contact": True},
    "action": "hold",
}
APPROVE_TEAM = {
    "name": "team",
    "direction": "outbound",
    "match": {"recipients": ["@acme.example"]},
    "action": "approve",
}
REFUSE_PDF = {
    "name": "no invoices in",
    "direction": "inbound",
    "match": {"has_attachments": True, "subject_contains": ["invoice"]},
    "action": "refuse",
}


def _url(tenant: Tenant) -> str:
    return f"/v1/mailboxes/{tenant.mailbox.pk}/oversight-rules"


def _put(client: Any, tenant: Tenant, rules: Any, **extra: Any) -> Any:
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.put(_url(tenant), {"rules": rules, **extra}, format="json")


def _stored(tenant: Tenant) -> list[dict[str, Any]]:
    tenant.mailbox.refresh_from_db()
    return list(tenant.mailbox.oversight_rules)


def test_read_and_tighten_at_once(owner: Tenant, api) -> None:
    admin = api("admin")
    assert api("read").get(_url(owner)).json() == {"rules": []}
    # Holding and refusing only tighten: no operator needed, even with approvals on.
    owner.account.require_operator_approval = True
    owner.account.save()
    response = _put(admin, owner, [HOLD_STRANGERS, REFUSE_PDF])
    assert response.status_code == 200, response.content
    assert response.json() == {"rules": [HOLD_STRANGERS, REFUSE_PDF]}
    assert api("read").get(_url(owner)).json() == {"rules": [HOLD_STRANGERS, REFUSE_PDF]}
    assert mail.outbox == []
    entry = AuditEntry.objects.get(action="mailbox.oversight_rules_replaced")
    assert entry.metadata["to"] == [HOLD_STRANGERS, REFUSE_PDF]
    assert entry.metadata["loosening"] == []
    # Removing an approve rule, or widening a hold, tightens too.
    wider = {**HOLD_STRANGERS, "match": {}}
    assert _put(admin, owner, [wider, REFUSE_PDF]).status_code == 200


def test_scopes(owner: Tenant, api) -> None:
    assert_error(api("send").get(_url(owner)), "insufficient_permissions")
    response = api("read").put(_url(owner), {"rules": []}, format="json")
    assert_error(response, "insufficient_permissions")


def test_another_tenants_mailbox_is_not_found(owner: Tenant, other: Tenant, api) -> None:
    assert_error(api("read").get(_url(other)), "not_found")
    assert_error(_put(api("admin"), other, [HOLD_STRANGERS]), "not_found")


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda: [HOLD_STRANGERS, APPROVE_TEAM], id="adding an approve rule"),
        pytest.param(lambda: [], id="removing a hold rule"),
        pytest.param(
            lambda: [{**HOLD_STRANGERS, "match": {"first_contact": True, "has_links": True}}],
            id="narrowing a hold rule",
        ),
        pytest.param(lambda: [{**HOLD_STRANGERS, "action": "approve"}], id="softening"),
        pytest.param(
            lambda: [{**APPROVE_TEAM, "match": {}, "direction": "inbound"}, HOLD_STRANGERS],
            id="an approve rule of the other direction",
        ),
    ],
)
def test_loosening_needs_the_operator(owner: Tenant, api, change) -> None:
    """Even with the account's admin approvals turned off, as a mode upgrade does."""
    assert owner.account.require_operator_approval is False
    admin = api("admin")
    owner.mailbox.oversight_rules = [HOLD_STRANGERS]
    owner.mailbox.save()
    rules = change()
    first = _put(admin, owner, rules)
    assert first.status_code == 202, first.content
    assert first.json()["status"] == "pending_approval"
    assert _stored(owner) == [HOLD_STRANGERS]
    [notice] = mail.outbox
    assert notice.to == [owner.account.oversight_email]
    assert "loosen the oversight rules" in notice.subject
    code = CODE.search(notice.body).group(1)

    wrong = _put(admin, owner, rules, approval_code="AAA-BBB-CCC")
    assert_error(wrong, "validation_error", param="approval_code")
    assert _stored(owner) == [HOLD_STRANGERS]
    # The code is bound to these exact rules.
    other = _put(admin, owner, [*rules, REFUSE_PDF], approval_code=code)
    assert_error(other, "validation_error", param="approval_code")

    done = _put(admin, owner, rules, approval_code=code)
    assert done.status_code == 200, done.content
    assert _stored(owner) == rules
    assert AuditEntry.objects.filter(action="approval_code.used").exists()


def test_the_operator_approves_in_the_console(owner: Tenant, api) -> None:
    owner.mailbox.oversight_rules = [HOLD_STRANGERS]
    owner.mailbox.save()
    pending = _put(api("admin"), owner, [APPROVE_TEAM, HOLD_STRANGERS])
    assert pending.status_code == 202
    admin_action_approve(
        actor=Actor.for_operator(owner.operator), approval_id=pending.json()["approval_id"]
    )
    assert _stored(owner) == [APPROVE_TEAM, HOLD_STRANGERS]
    request = AdminActionRequest.objects.get(pk=pending.json()["approval_id"])
    assert request.status == "completed"


def test_an_approved_request_does_not_apply_to_rules_changed_since(owner: Tenant, api) -> None:
    """The loosening was judged against the list of the time: compare-and-set."""
    admin = api("admin")
    pending = _put(admin, owner, [APPROVE_TEAM])
    assert pending.status_code == 202
    assert _put(admin, owner, [REFUSE_PDF]).status_code == 200
    with pytest.raises(Exception, match="changed since"):
        admin_action_approve(
            actor=Actor.for_operator(owner.operator), approval_id=pending.json()["approval_id"]
        )
    assert _stored(owner) == [REFUSE_PDF]


@pytest.mark.parametrize(
    ("rules", "code", "param"),
    [
        ("nope", "invalid_parameter", "rules"),
        ([HOLD_STRANGERS, "x"], "invalid_parameter", "rules[1]"),
        ([{**HOLD_STRANGERS, "name": ""}], "invalid_parameter", "rules[0].name"),
        ([{**HOLD_STRANGERS, "direction": "sideways"}], "invalid_parameter", "rules[0].direction"),
        ([HOLD_STRANGERS, {**REFUSE_PDF, "action": "ban"}], "invalid_parameter", "rules[1].action"),
        (
            [REFUSE_PDF, HOLD_STRANGERS, {**APPROVE_TEAM, "match": {"recipients": ["a@b.c", "x"]}}],
            "invalid_parameter",
            "rules[2].match.recipients[1]",
        ),
        (
            [{**APPROVE_TEAM, "match": {"senders": ["@acme.example"]}}],
            "validation_error",
            "rules[0].match.senders",
        ),
        ([{**HOLD_STRANGERS, "match": {"first_contact": "yes"}}], "invalid_parameter",
         "rules[0].match.first_contact"),
        ([{**HOLD_STRANGERS, "match": {"colour": "red"}}], "invalid_parameter",
         "rules[0].match.colour"),
        ([{**HOLD_STRANGERS, "match": {"body_contains": []}}], "invalid_parameter",
         "rules[0].match.body_contains"),
        ([HOLD_STRANGERS, {**REFUSE_PDF, "name": "Strangers"}], "validation_error",
         "rules[1].name"),
        ([{**HOLD_STRANGERS, "name": f"r{i}"} for i in range(MAX_RULES + 1)], "validation_error",
         "rules"),
    ],
)  # fmt: skip
def test_bad_rules_name_their_index_and_field(
    owner: Tenant, api, rules: Any, code: str, param: str
) -> None:
    response = _put(api("admin"), owner, rules)
    error = assert_error(response, code, param=param)
    assert param in error["message"] or param == "rules"
    assert _stored(owner) == []
    assert mail.outbox == []


def test_every_bad_rule_is_listed(owner: Tenant, api) -> None:
    rules = [HOLD_STRANGERS, {**HOLD_STRANGERS, "name": "b", "action": "x"}, {"name": "c"}]
    error = assert_error(_put(api("admin"), owner, rules), "invalid_parameter")
    assert [item["field"] for item in error["errors"]] == [
        "rules[1].action",
        "rules[2].direction",
        "rules[2].action",
    ]


_bad_values = {
    "name": st.one_of(st.just(""), st.integers(), st.text(min_size=101, max_size=120)),
    "direction": st.text(max_size=10).filter(lambda v: v not in ("inbound", "outbound")),
    "action": st.text(max_size=10).filter(lambda v: v not in ("approve", "hold", "refuse")),
}


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    count=st.integers(min_value=1, max_value=8),
    data=st.data(),
    field=st.sampled_from(sorted(_bad_values)),
)
def test_one_bad_field_anywhere_is_named(owner: Tenant, api, count: int, data, field: str) -> None:
    index = data.draw(st.integers(min_value=0, max_value=count - 1))
    rules = [{**HOLD_STRANGERS, "name": f"rule {i}"} for i in range(count)]
    rules[index] = {**rules[index], field: data.draw(_bad_values[field])}
    response = api("admin").put(_url(owner), {"rules": rules}, format="json")
    assert_error(response, "invalid_parameter", param=f"rules[{index}].{field}")
    assert _stored(owner) == []
