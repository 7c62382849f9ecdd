"""The SMTP listener, driven with smtplib against a real socket on a free port."""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Iterator

import pytest
from django.core.management import call_command

from mailboxes.models import Email, EmailStatus
from mailboxes.smtp import smtp_controller
from tests.conftest import Tenant
from tests.inbound.conftest import build_mime

# The listener serves from its own threads and connections: the rows must be committed.
pytestmark = pytest.mark.django_db(transaction=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def listener() -> Iterator[int]:
    port = _free_port()
    controller = smtp_controller(host="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def test_delivers_to_a_known_mailbox(owner: Tenant, listener: int) -> None:
    raw = build_mime(to=owner.mailbox.address, subject="Over SMTP")
    with smtplib.SMTP("127.0.0.1", listener, timeout=10) as client:
        refused = client.sendmail("alice@example.org", [owner.mailbox.address], raw)
    assert refused == {}
    email = Email.objects.get(mailbox=owner.mailbox)
    assert email.subject == "Over SMTP"
    assert email.status == EmailStatus.UNREAD


def test_unknown_recipient_is_refused_at_rcpt(owner: Tenant, listener: int) -> None:
    raw = build_mime(to="ghost@acme.multimail.localhost")
    with (
        smtplib.SMTP("127.0.0.1", listener, timeout=10) as client,
        pytest.raises(smtplib.SMTPRecipientsRefused) as refused,
    ):
        client.sendmail("alice@example.org", ["ghost@acme.multimail.localhost"], raw)
    [(code, _)] = refused.value.recipients.values()
    assert code == 550
    assert not Email.objects.exists()


def test_mixed_recipients_deliver_to_the_known_one(owner: Tenant, listener: int) -> None:
    raw = build_mime(to=f"{owner.mailbox.address}, ghost@acme.multimail.localhost")
    with smtplib.SMTP("127.0.0.1", listener, timeout=10) as client:
        refused = client.sendmail(
            "alice@example.org", [owner.mailbox.address, "ghost@acme.multimail.localhost"], raw
        )
    assert list(refused) == ["ghost@acme.multimail.localhost"]
    assert Email.objects.filter(mailbox=owner.mailbox).count() == 1


def test_deleted_mailbox_is_refused(owner: Tenant, listener: int) -> None:
    owner.mailbox.is_active = False
    owner.mailbox.save()
    raw = build_mime(to=owner.mailbox.address)
    with (
        smtplib.SMTP("127.0.0.1", listener, timeout=10) as client,
        pytest.raises(smtplib.SMTPRecipientsRefused),
    ):
        client.sendmail("alice@example.org", [owner.mailbox.address], raw)


def test_management_command_is_registered() -> None:
    with pytest.raises(SystemExit):
        call_command("smtpd", "--help")
