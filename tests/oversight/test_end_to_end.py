"""Over HTTP, the way an agent and an operator use it: hold, notify, decide, deliver once."""

from __future__ import annotations

from django.core import mail
from django.test import Client

from mailboxes.models import Direction, Email, EmailStatus
from mailboxes.services.inbound.receive import inbound_receive
from mailboxes.tasks import deliver_email, send_due_scheduled, sweep_stuck_emails
from tests.conftest import Tenant, assert_error, client_for, key_for
from tests.oversight.conftest import TOKEN_IN_LINK, hosted_decision, mime


def _set_mode(tenant: Tenant, mode: str) -> None:
    tenant.mailbox.oversight_mode = mode
    tenant.mailbox.save()


def _received(tenant: Tenant) -> list[Email]:
    return list(Email.objects.filter(mailbox=tenant.mailbox, direction=Direction.INBOUND))


def test_gated_send_to_a_local_mailbox_is_held_approved_and_delivered_once(
    owner: Tenant, other: Tenant, api, django_capture_on_commit_callbacks
) -> None:
    _set_mode(owner, "gated_send")
    agent = api("send", "read")
    with django_capture_on_commit_callbacks(execute=True):
        response = agent.post(
            f"/v1/mailboxes/{owner.mailbox.pk}/send",
            {"to": [other.mailbox.address], "subject": "Proposal", "markdown": "Hi **there**"},
            format="json",
        )
    assert response.status_code == 202
    email = Email.objects.get(pk=response.json()["id"])
    assert email.status == EmailStatus.PENDING_SEND_APPROVAL
    assert _received(other) == []

    # The operator's notification: full content and a working link.
    [notice] = [m for m in mail.outbox if owner.account.oversight_email in m.to]
    assert "Proposal" in notice.body
    assert other.mailbox.address in notice.body
    assert "Hi there" in notice.body or "Hi **there**" in notice.body
    link = TOKEN_IN_LINK.search(notice.body)
    assert link is not None
    page = Client().get(f"/v1/approve/{link.group(1)}")
    assert page.status_code == 200
    assert "Proposal" in page.content.decode()

    # The agent's own key cannot approve it.
    denied = agent.post(
        "/v1/oversight/decide", {"email_id": email.pk, "action": "approve"}, format="json"
    )
    assert_error(denied, "insufficient_permissions", required_scope="oversight")

    overseer = api("oversight")
    with django_capture_on_commit_callbacks(execute=True):
        decided = overseer.post(
            "/v1/oversight/decide", {"email_id": email.pk, "action": "approve"}, format="json"
        )
    assert decided.status_code == 200
    assert decided.json()["status"] == "approved_and_sent"
    email.refresh_from_db()
    assert email.status == EmailStatus.SENT
    [copy] = _received(other)
    assert copy.subject == "Proposal"

    # Nothing sends it again: a second decision, the link, the sweep, a redelivered task.
    again = overseer.post(
        "/v1/oversight/decide", {"email_id": email.pk, "action": "approve"}, format="json"
    )
    assert_error(again, "already_decided", status="approved")
    assert Client().post(f"/v1/approve/{link.group(1)}", {"action": "approve"}).status_code == 410
    with django_capture_on_commit_callbacks(execute=True):
        sweep_stuck_emails()
        send_due_scheduled()
        deliver_email.delay(email.pk)
    assert len(_received(other)) == 1


def test_a_rejected_email_is_never_delivered(
    owner: Tenant, other: Tenant, api, django_capture_on_commit_callbacks
) -> None:
    _set_mode(owner, "gated_all")
    with django_capture_on_commit_callbacks(execute=True):
        response = api("send").post(
            f"/v1/mailboxes/{owner.mailbox.pk}/send",
            {"to": [other.mailbox.address], "subject": "Bad idea", "markdown": "No"},
            format="json",
        )
    email = Email.objects.get(pk=response.json()["id"])
    token = TOKEN_IN_LINK.search(mail.outbox[-1].body).group(1)
    page = hosted_decision(Client(), token, action="reject", reason="no")
    assert page.status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        sweep_stuck_emails()
        send_due_scheduled()
        deliver_email.delay(email.pk)
    email.refresh_from_db()
    assert email.status == EmailStatus.REJECTED
    assert email.sent_at is None
    assert _received(other) == []


def test_gated_all_holds_inbound_until_approved_and_hides_it_from_the_agent(
    owner: Tenant, api, django_capture_on_commit_callbacks
) -> None:
    _set_mode(owner, "gated_all")
    with django_capture_on_commit_callbacks(execute=True):
        [email] = inbound_receive(
            raw=mime(to=owner.mailbox.address, attachment=True),
            recipients=[owner.mailbox.address],
            source="postmark",
        )
    assert email.status == EmailStatus.PENDING_INBOUND_APPROVAL
    reader = api("read")
    detail = f"/v1/mailboxes/{owner.mailbox.pk}/emails/{email.pk}"
    body = reader.get(detail).json()
    assert "Secret body" not in str(body)
    assert body["attachments"] == []
    assert_error(reader.get(f"{detail}/attachments/secret.pdf"), "not_found")
    assert_error(reader.get(f"{detail}/attachments/secret.pdf/url"), "not_found")

    _, raw = key_for(owner.account, "oversight")
    with django_capture_on_commit_callbacks(execute=True):
        decided = client_for(raw).post(
            "/v1/oversight/decide", {"email_id": email.pk, "action": "approve"}, format="json"
        )
    assert decided.json() == {"status": "approved", "postmark_message_id": None}
    body = reader.get(detail).json()
    assert "Secret body" in body["markdown"]
    assert [a["name"] for a in body["attachments"]] == ["secret.pdf"]
    assert reader.get(f"{detail}/attachments/secret.pdf").status_code == 200


def test_approving_from_the_hosted_page_sends_it(
    owner: Tenant, other: Tenant, api, django_capture_on_commit_callbacks
) -> None:
    _set_mode(owner, "gated_send")
    with django_capture_on_commit_callbacks(execute=True):
        response = api("send").post(
            f"/v1/mailboxes/{owner.mailbox.pk}/send",
            {"to": [other.mailbox.address], "subject": "From the page", "markdown": "Yes"},
            format="json",
        )
    email = Email.objects.get(pk=response.json()["id"])
    token = TOKEN_IN_LINK.search(mail.outbox[-1].body).group(1)
    page = hosted_decision(Client(), token, action="approve")
    assert page.status_code == 200
    assert "Approved: the email is on its way." in page.content.decode()
    email.refresh_from_db()
    assert email.status == EmailStatus.SENT
    assert email.approved_by.startswith("hosted_link:")
    assert [copy.subject for copy in _received(other)] == ["From the page"]
