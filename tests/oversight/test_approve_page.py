"""The hosted approval page: GET shows, POST decides, the token is the only authority."""

from __future__ import annotations

from datetime import timedelta

from django.test import Client, TestCase
from django.utils import timezone

from accounts.actors import Actor
from accounts.models import AuditEntry
from mailboxes.models import Direction, EmailStatus
from oversight.models import ApprovalLink
from oversight.services import email_decide
from tests.conftest import Tenant, assert_error, key_for
from tests.oversight.conftest import held, hosted_decision, last_token, shown_version


def _url(token: str) -> str:
    return f"/v1/approve/{token}"


def _post(client: Client, token: str, **data: str):
    return hosted_decision(client, token, **data)


def test_get_renders_the_email_and_decides_nothing(owner: Tenant, client: Client, attach) -> None:
    email = held(owner.mailbox, direction=Direction.INBOUND, subject="Invoice <March>")
    attach(email, "invoice.pdf")
    token = last_token()

    for _ in range(3):  # a mail scanner prefetching the link, then the operator
        response = client.get(_url(token))
        assert response.status_code == 200
    html = response.content.decode()
    assert response["Content-Type"].startswith("text/html")
    assert "Invoice &lt;March&gt;" in html  # escaped
    assert "client@example.org" in html
    assert "Hello there" in html
    assert "invoice.pdf" in html
    assert 'name="action" value="approve"' in html
    assert 'name="action" value="reject"' in html
    assert 'name="reason"' in html
    assert "<script" not in html
    assert "style=" not in html  # CSP: styles come from a stylesheet only
    assert 'name="viewport"' in html
    assert response["Cache-Control"] == "no-store"
    assert response["Referrer-Policy"] == "no-referrer"
    assert "script-src 'self'" in response["Content-Security-Policy"]
    email.refresh_from_db()
    assert email.status == EmailStatus.PENDING_INBOUND_APPROVAL
    assert not AuditEntry.objects.filter(action__startswith="email.").exists()


def test_post_approve_inbound(owner: Tenant, client: Client) -> None:
    email = held(owner.mailbox, direction=Direction.INBOUND)
    token = last_token()
    response = _post(client, token, action="approve")
    assert response.status_code == 200
    assert "the agent can read it now" in response.content.decode()
    email.refresh_from_db()
    assert email.status == EmailStatus.UNREAD
    assert email.approved_by == f"hosted_link:approval link sent to {owner.account.oversight_email}"
    entry = AuditEntry.objects.get(action="email.approved")
    assert entry.actor_kind == "hosted_link"
    assert entry.actor_key is None


def test_post_reject_with_reason_then_link_is_spent(owner: Tenant, client: Client) -> None:
    email = held(owner.mailbox)
    token = last_token()
    response = _post(client, token, action="reject", reason="Not to this client")
    assert response.status_code == 200
    assert "it will never be sent" in response.content.decode()
    email.refresh_from_db()
    assert email.status == EmailStatus.REJECTED
    assert email.decision_reason == "Not to this client"

    for response in (client.get(_url(token)), _post(client, token, action="approve")):
        assert response.status_code == 410
        assert response["Content-Type"].startswith("text/html")
        assert "Already rejected" in response.content.decode()
    email.refresh_from_db()
    assert email.status == EmailStatus.REJECTED


def test_link_stops_working_once_decided_elsewhere(owner: Tenant, client: Client) -> None:
    email = held(owner.mailbox, direction=Direction.INBOUND)
    token = last_token()
    email_decide(actor=Actor.for_operator(owner.operator), email_id=email.pk, action="reject")
    response = _post(client, token, action="approve")
    assert response.status_code == 410
    assert "Already rejected" in response.content.decode()
    email.refresh_from_db()
    assert email.status == EmailStatus.REJECTED


def test_unknown_or_expired_token_is_an_html_page(owner: Tenant, client: Client) -> None:
    email = held(owner.mailbox)
    token = last_token()
    for bad in ("x" * 43, token[:-1] + ("A" if token[-1] != "A" else "B")):
        response = client.get(_url(bad))
        assert response.status_code == 410
        assert response["Content-Type"].startswith("text/html")
        assert "no longer works" in response.content.decode()

    ApprovalLink.objects.filter(email=email).update(expires_at=timezone.now() - timedelta(1))
    assert client.get(_url(token)).status_code == 410
    assert _post(client, token, action="approve").status_code == 410
    email.refresh_from_db()
    assert email.status == EmailStatus.PENDING_SEND_APPROVAL


def test_api_keys_are_no_tokens_and_give_no_authority(owner: Tenant, client: Client) -> None:
    email = held(owner.mailbox, direction=Direction.INBOUND)
    _, raw_send = key_for(owner.account, "send")
    _, raw_oversight = key_for(owner.account, "oversight")
    for raw in (raw_send, raw_oversight):
        assert _post(client, raw, action="approve").status_code == 410
        response = client.post(
            _url("not-a-token"), {"action": "approve"}, HTTP_AUTHORIZATION=f"Bearer {raw}"
        )
        assert response.status_code == 410
    email.refresh_from_db()
    assert email.status == EmailStatus.PENDING_INBOUND_APPROVAL


def test_bad_action_changes_nothing(owner: Tenant, client: Client) -> None:
    email = held(owner.mailbox, direction=Direction.INBOUND)
    token = last_token()
    response = _post(client, token, action="maybe")
    assert response.status_code == 400
    assert 'value="approve"' in response.content.decode()
    email.refresh_from_db()
    assert email.status == EmailStatus.PENDING_INBOUND_APPROVAL


def test_post_needs_no_csrf_token_or_session(owner: Tenant) -> None:
    held(owner.mailbox, direction=Direction.INBOUND)
    token = last_token()
    strict = Client(enforce_csrf_checks=True)
    version = shown_version(strict.get(_url(token)).content.decode())
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = strict.post(_url(token), {"action": "approve", "version": version})
    assert response.status_code == 200


def test_other_methods_answer_the_api_envelope(owner: Tenant, client: Client) -> None:
    held(owner.mailbox)
    assert_error(client.put(_url(last_token())), "method_not_allowed")


def test_refused_approval_is_an_html_page(owner: Tenant, client: Client) -> None:
    email = held(owner.mailbox)
    token = last_token()
    owner.mailbox.oversight_mode = "read_only"
    owner.mailbox.save()
    response = _post(client, token, action="approve")
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")
    assert "read_only" in response.content.decode()
    email.refresh_from_db()
    assert email.status == EmailStatus.PENDING_SEND_APPROVAL
