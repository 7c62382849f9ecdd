"""The mail core end to end, through HTTP only, on PostgreSQL with a real Celery worker.

Mailbox A sends to mailbox B on this server with an attachment; B finds it unread, reads
it (now read), downloads the attachment byte for byte, and replies; A sees the reply in
the same thread. Then the same round trip for mail that arrives from outside: through the
SMTP listener (smtplib) and through a recorded Postmark inbound payload.
"""

from __future__ import annotations

import base64
import json
import os
import smtplib
import socket
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from django.test import Client, override_settings
from rest_framework.test import APIClient

from mailboxes.smtp import smtp_controller
from tests.conftest import Tenant, wait_for
from tests.outbound.conftest import WorkerProcess, attachment

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

POSTMARK_SECRET = "postmark:e2e-webhook-pass"
PAYLOADS = Path(__file__).resolve().parents[1] / "inbound" / "fixtures"
# Not valid UTF-8 on purpose: the bytes must survive MIME, storage and download untouched.
BINARY = bytes(range(256)) * 8 + os.urandom(512)


def inbox(client: APIClient, mailbox_id: str, **query: str) -> list[dict[str, Any]]:
    response = client.get(f"/v1/mailboxes/{mailbox_id}/emails", query)
    assert response.status_code == 200, response.content
    return list(response.json()["emails"])


def read_and_download(client: APIClient, mailbox_id: str, email_id: str, filename: str) -> bytes:
    """Read the email (it becomes read) and download its attachment."""
    base = f"/v1/mailboxes/{mailbox_id}/emails/{email_id}"
    detail = client.get(base)
    assert detail.status_code == 200, detail.content
    assert [item["name"] for item in detail.json()["attachments"]] == [filename]
    assert client.get(base).json()["status"] == "read"
    assert [item["id"] for item in inbox(client, mailbox_id, status="read")] == [email_id]
    download = client.get(f"{base}/attachments/{filename}")
    assert download.status_code == 200
    return download.content


def reply_and_find_thread(client: APIClient, mailbox_id: str, email_id: str) -> dict[str, Any]:
    response = client.post(
        f"/v1/mailboxes/{mailbox_id}/reply/{email_id}",
        {"markdown": "Thanks, **received**."},
        format="json",
    )
    assert response.status_code == 202, response.content
    reply = response.json()
    wait_for(
        lambda: (
            client.get(f"/v1/mailboxes/{mailbox_id}/emails/{reply['id']}").json()["status"]
            == "sent"
        )
    )
    return reply


@pytest.fixture
def running_worker(celery_worker_process: WorkerProcess) -> WorkerProcess:
    celery_worker_process.start()
    return celery_worker_process


@pytest.fixture
def agent_a(owner: Tenant, api: Callable[..., APIClient]) -> APIClient:
    return api("send", "read")


def test_mailbox_to_mailbox_round_trip(
    running_worker: WorkerProcess,
    owner: Tenant,
    other: Tenant,
    agent_a: APIClient,
    api: Callable[..., APIClient],
) -> None:
    agent_b = api("send", "read", account=other.account)
    a, b = owner.mailbox, other.mailbox
    sent = agent_a.post(
        f"/v1/mailboxes/{a.pk}/send",
        {
            "to": [b.address],
            "subject": "Report attached",
            "markdown": "Here is the **report**.",
            "attachments": [attachment("report.bin", BINARY, "application/octet-stream")],
        },
        format="json",
    )
    assert sent.status_code == 202, sent.content
    original = sent.json()

    [received] = wait_for(lambda: inbox(agent_b, b.pk, status="unread"))
    assert received["subject"] == "Report attached"
    assert received["from"] == a.address
    assert received["has_attachments"] is True
    assert read_and_download(agent_b, b.pk, received["id"], "report.bin") == BINARY

    reply_and_find_thread(agent_b, b.pk, received["id"])
    [answer] = wait_for(lambda: inbox(agent_a, a.pk, direction="inbound"))
    assert answer["subject"] == "Re: Report attached"
    assert answer["thread_id"] == original["thread_id"]
    thread = agent_a.get(f"/v1/mailboxes/{a.pk}/threads/{original['thread_id']}").json()
    assert [item["id"] for item in thread["emails"]] == [original["id"], answer["id"]]
    assert thread["message_count"] == 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp_port() -> Iterator[int]:
    port = _free_port()
    controller = smtp_controller(host="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def assert_reply_threads_with(agent: APIClient, mailbox_id: str, received: dict[str, Any]) -> None:
    reply = reply_and_find_thread(agent, mailbox_id, received["id"])
    assert reply["thread_id"] == received["thread_id"]
    thread = agent.get(f"/v1/mailboxes/{mailbox_id}/threads/{received['thread_id']}").json()
    assert [item["direction"] for item in thread["emails"]] == ["inbound", "outbound"]


def test_smtp_listener_round_trip(
    running_worker: WorkerProcess, owner: Tenant, agent_a: APIClient, smtp_port: int
) -> None:
    message = EmailMessage()
    message["From"] = "Client <client@example.org>"
    message["To"] = owner.mailbox.address
    message["Subject"] = "Invoice"
    message["Message-ID"] = "<invoice-1@example.org>"
    message.set_content("Please find the invoice attached.")
    message.add_attachment(BINARY, maintype="application", subtype="pdf", filename="inv.pdf")
    with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as client:
        client.send_message(message)

    [received] = wait_for(lambda: inbox(agent_a, owner.mailbox.pk, status="unread"))
    assert received["from"] == "client@example.org"
    assert read_and_download(agent_a, owner.mailbox.pk, received["id"], "inv.pdf") == BINARY
    assert_reply_threads_with(agent_a, owner.mailbox.pk, received)


@override_settings(ANYMAIL={"WEBHOOK_SECRET": POSTMARK_SECRET})
def test_postmark_inbound_round_trip(
    running_worker: WorkerProcess, owner: Tenant, agent_a: APIClient
) -> None:
    payload = json.loads((PAYLOADS / "postmark_inbound.json").read_text())
    payload["To"] = owner.mailbox.address
    payload["ToFull"] = [{"Email": owner.mailbox.address, "Name": "", "MailboxHash": ""}]
    payload["OriginalRecipient"] = owner.mailbox.address
    [fixture_attachment] = payload["Attachments"]
    credentials = base64.b64encode(POSTMARK_SECRET.encode()).decode()
    response = Client().post(
        "/v1/webhooks/postmark-inbound",
        data=json.dumps(payload),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Basic {credentials}",
    )
    assert response.json() == {"received": True, "processed": 1}

    [received] = inbox(agent_a, owner.mailbox.pk, status="unread")
    name = fixture_attachment["Name"]
    downloaded = read_and_download(agent_a, owner.mailbox.pk, received["id"], name)
    assert downloaded == base64.b64decode(fixture_attachment["Content"])
    assert_reply_threads_with(agent_a, owner.mailbox.pk, received)
