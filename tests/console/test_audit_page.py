"""The audit page: filters, links to the resources, readable values, the CSV export."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from accounts.actors import Actor
from accounts.audit_values import audit_details, readable_value
from accounts.models import AuditEntry
from accounts.services import audit_record
from mailboxes.models import Domain, WebhookSubscription
from tests.conftest import Tenant, key_for
from tests.console.conftest import held_email


def _record(tenant: Tenant, action: str, resource_type: str = "x", resource_id: str = "", **kw):
    return audit_record(
        actor=Actor.for_operator(tenant.operator),
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        **kw,
    )


def _rows(body: str) -> str:
    return body.split('id="audit-rows"')[1].split("</tbody>")[0]


def test_filters_by_actor_action_resource_and_date(owner, console):
    key, _ = key_for(owner.account, "admin")
    audit_record(
        actor=Actor.for_key(key),
        action="api_key.created",
        resource_type="api_key",
        resource_id=key.pk,
    )
    _record(owner, "api_key.revoked", "api_key", key.pk)
    _record(owner, "mailbox.updated", "mailbox", owner.mailbox.pk)
    old = _record(owner, "webhook.created", "webhook", "wh_old")
    AuditEntry.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))

    def shown(query: str) -> set[str]:
        rows = _rows(console.get(f"/console/audit?{query}").content.decode())
        actions = {"api_key.created", "api_key.revoked", "mailbox.updated", "webhook.created"}
        return {action for action in actions if f"<code>{action}</code>" in rows}

    assert shown("action=api_key.") == {"api_key.created", "api_key.revoked"}
    assert shown("actor=ops@acme") == {"api_key.revoked", "mailbox.updated", "webhook.created"}
    assert shown("resource_type=mailbox") == {"mailbox.updated"}
    assert shown(f"resource_id={key.pk}") == {"api_key.created", "api_key.revoked"}
    week_ago = (timezone.now() - timedelta(days=7)).date().isoformat()
    assert "webhook.created" not in shown(f"since={week_ago}")
    assert shown(f"until={week_ago}") == {"webhook.created"}
    # The filters stay in the form and in the link to older entries.
    page = console.get("/console/audit?action=api_key.").content.decode()
    assert 'value="api_key."' in page
    assert "Clear filters" in page


def test_a_bad_filter_is_a_clear_message(console):
    response = console.get("/console/audit?since=yesterday", follow=True)
    assert "code-invalid_parameter" in response.content.decode()
    assert "Enter a valid date." in response.content.decode()


def test_entries_link_to_resources_that_still_exist(owner, console):
    email = held_email(owner.mailbox)
    hook = WebhookSubscription.objects.create(
        account=owner.account, url="https://hooks.example/x", events=["message.sent"]
    )
    domain = Domain.objects.create(account=owner.account, domain="mail.acme.example")
    _record(owner, "email.approved", "email", email.pk)
    _record(owner, "mailbox.updated", "mailbox", owner.mailbox.pk)
    _record(owner, "webhook.created", "webhook", hook.pk)
    _record(owner, "domain.created", "domain", domain.pk)
    _record(owner, "webhook.deleted", "webhook", "gone_webhook_id")
    body = console.get("/console/audit").content.decode()
    assert f'href="/console/mailboxes/{owner.mailbox.pk}/emails/{email.pk}"' in body
    assert f'href="/console/mailboxes/{owner.mailbox.pk}"' in body
    assert f'href="/console/webhooks/{hook.pk}"' in body
    assert f'href="/console/domains/{domain.pk}"' in body
    assert 'href="/console/webhooks/gone_webhook_id"' not in body
    assert "gone_webhook_id" in body


def test_another_tenants_resource_is_never_linked(owner, other, console):
    foreign = WebhookSubscription.objects.create(
        account=other.account, url="https://hooks.example/y", events=["message.sent"]
    )
    # An entry in my log naming their id (as if guessed): shown as text, not linked.
    _record(owner, "webhook.deleted", "webhook", foreign.pk)
    _record(other, "their.secret", "webhook", foreign.pk)
    body = console.get("/console/audit").content.decode()
    assert f'href="/console/webhooks/{foreign.pk}"' not in body
    assert "their.secret" not in body


def test_values_are_readable_not_python_reprs(owner, console):
    _record(
        owner,
        "mailbox.updated",
        "mailbox",
        owner.mailbox.pk,
        metadata={
            "changes": {"oversight_mode": ["gated_send", "autonomous"], "auto_cc": ["", None]}
        },
    )
    _record(owner, "account.plan_changed", "account", metadata={"from": "starter", "to": "pro"})
    _record(owner, "api_key.created", "api_key", metadata={"scopes": ["send", "read"], "x": True})
    body = console.get("/console/audit").content.decode()
    assert "oversight_mode: gated_send → autonomous" in body
    assert "auto_cc: — → —" in body
    assert "starter → pro" in body
    assert "scopes: send, read" in body
    assert "x: yes" in body
    assert "{&#x27;" not in body
    assert "[&#x27;" not in body
    assert "None" not in _rows(body)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet="abcxyz ", max_size=12),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(alphabet="abcxyz_", min_size=1, max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@given(metadata=st.dictionaries(st.text(alphabet="abcxyz_", min_size=1, max_size=8), JSON))
def test_any_metadata_renders_without_reprs(metadata):
    """Whatever shape a service records, no bracket, quote or None/True/False shows."""
    lines = audit_details(metadata)
    for line in lines:
        assert isinstance(line, str)
        assert line
        assert not set("{}[]'\"") & set(line)
        for token in ("None", "True", "False"):
            assert token not in line


@given(old=JSON, new=JSON, field=st.text(alphabet="abcxyz_", min_size=1, max_size=8))
def test_a_change_reads_field_old_arrow_new(old, new, field):
    [line] = audit_details({"changes": {field: [old, new]}})
    assert line == f"{field}: {readable_value(old)} → {readable_value(new)}"


def test_csv_export_streams_the_filtered_log_of_this_tenant(owner, other, console):
    _record(
        owner, "mailbox.updated", "mailbox", owner.mailbox.pk, metadata={"from": "a", "to": "b"}
    )
    _record(owner, "api_key.revoked", "api_key", "k1")
    _record(other, "mailbox.updated", "mailbox", other.mailbox.pk)
    AuditEntry.objects.create(
        account=owner.account,
        action="mailbox.configured",
        resource_type="mailbox",
        actor_kind="api_key",
        actor_label="=HYPERLINK(evil)",
    )
    response = console.get("/console/audit.csv?resource_type=mailbox")
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv"
    assert 'attachment; filename="audit-acme-' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [row["action"] for row in rows] == ["mailbox.configured", "mailbox.updated"]
    assert rows[1]["details"] == "a → b"
    assert rows[1]["metadata"] == '{"from": "a", "to": "b"}'
    assert other.mailbox.pk not in "".join(row["resource_id"] for row in rows)
    # A cell a spreadsheet would run as a formula stays text.
    assert rows[0]["actor"] == "'=HYPERLINK(evil)"
    page = console.get("/console/audit?resource_type=mailbox").content.decode()
    assert 'href="/console/audit.csv?resource_type=mailbox"' in page


def test_csv_export_refuses_a_bad_filter(console):
    response = console.get("/console/audit.csv?until=nope", follow=True)
    assert "code-invalid_parameter" in response.content.decode()


@pytest.mark.parametrize("query", ["", "?action=thing."])
def test_audit_page_query_count_with_links(owner, console, query):
    email = held_email(owner.mailbox)
    hook = WebhookSubscription.objects.create(
        account=owner.account, url="https://hooks.example/x", events=["message.sent"]
    )

    def count(n: int) -> int:
        for index in range(n):
            _record(owner, f"thing.{index}", "email", email.pk)
            _record(owner, f"thing.{index}", "webhook", hook.pk)
            _record(owner, f"thing.{index}", "mailbox", owner.mailbox.pk)
            _record(owner, f"thing.{index}", "suppression", "a@example.com")
        with CaptureQueriesContext(connection) as queries:
            assert console.get(f"/console/audit{query}").status_code == 200
        return len(queries)

    assert count(2) == count(30)
