"""The approvals page: readable summaries, a deny reason, the unseen-secret warning."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.codes import code_issue
from accounts.models import AdminActionRequest, AdminActionStatus, AuditEntry, CodePurpose
from tests.conftest import Tenant


def _pending(tenant: Tenant, action: str = "api_key.create", params: dict | None = None):
    code, _ = code_issue(
        account=tenant.account,
        purpose=CodePurpose.ADMIN_ACTION,
        ttl=timedelta(hours=1),
        subject="d",
    )
    return AdminActionRequest.objects.create(
        account=tenant.account,
        action=action,
        params={"name": "ci", "scopes": ["send", "read"]} if params is None else params,
        digest="d",
        code=code,
        expires_at=timezone.now() + timedelta(hours=1),
    )


def test_each_request_reads_as_a_sentence(owner, console):
    _pending(owner)
    _pending(
        owner,
        "webhook.create",
        {"url": "https://hooks.example/x", "events": ["message.sent"], "mailbox_id": None},
    )
    body = console.get("/console/approvals").content.decode()
    assert "Create the API key &#x27;ci&#x27; with scopes send, read" in body
    assert "name=ci" not in body
    assert "{" not in body.split("<main")[1]


def test_key_creation_warns_that_nobody_sees_the_secret(owner, console):
    key_request = _pending(owner)
    other_request = _pending(owner, "sending.resume", {})
    body = console.get("/console/approvals").content.decode()
    assert f'id="secret-warning-{key_request.pk}"' in body
    assert f'id="secret-warning-{other_request.pk}"' not in body
    assert "Nobody will see this key's secret if you approve here." in body
    assert "send it the approval code from the email" in body
    response = console.post(f"/console/approvals/{key_request.pk}", {"action": "approve"})
    assert response.status_code == 302
    after = console.get(response["Location"]).content.decode()
    assert "approved and done. Nobody has seen the key&#x27;s secret" in after


def test_deny_with_a_reason(owner, console):
    request = _pending(owner)
    response = console.post(
        f"/console/approvals/{request.pk}", {"action": "deny", "reason": "  Not   this week "}
    )
    assert response.status_code == 302
    after = console.get(response["Location"]).content.decode()
    assert "Create the API key &#x27;ci&#x27; with scopes send, read: denied." in after
    request.refresh_from_db()
    assert (request.status, request.deny_reason) == (AdminActionStatus.DENIED, "Not this week")
    audit = AuditEntry.objects.get(account=owner.account, action="admin_action.denied")
    assert audit.metadata == {"action": "api_key.create", "reason": "Not this week"}


def test_a_too_long_reason_or_unknown_decision_changes_nothing(owner, console):
    request = _pending(owner)
    too_long = console.post(
        f"/console/approvals/{request.pk}", {"action": "deny", "reason": "x" * 501}, follow=True
    )
    assert "a reason is at most 500 characters" in too_long.content.decode()
    odd = console.post(f"/console/approvals/{request.pk}", {"action": "maybe"}, follow=True)
    assert "Choose Approve or Deny" in odd.content.decode()
    request.refresh_from_db()
    assert request.status == AdminActionStatus.PENDING


def test_another_tenants_requests_are_neither_shown_nor_decided(owner, other, console):
    foreign = _pending(other)
    assert foreign.pk not in console.get("/console/approvals").content.decode()
    denied = console.post(
        f"/console/approvals/{foreign.pk}", {"action": "deny", "reason": "x"}, follow=True
    )
    assert "code-not_found" in denied.content.decode()
    foreign.refresh_from_db()
    assert (foreign.status, foreign.deny_reason) == (AdminActionStatus.PENDING, "")


def test_approvals_query_count_and_cursor(owner, console):
    def count(n: int) -> int:
        for _ in range(n):
            _pending(owner)
        with CaptureQueriesContext(connection) as queries:
            assert console.get("/console/approvals").status_code == 200
        return len(queries)

    assert count(2) == count(55)
    first = console.get("/console/approvals").content.decode()
    cursor = first.split('class="pagination"><a href="?cursor=')[1].split('"')[0]
    second = console.get(f"/console/approvals?cursor={cursor}").content.decode()
    assert second.count('class="queue-item"') == 7
