"""SMTP submission, driven with smtplib and STARTTLS against the real listener.

The listener is bound to loopback (there is no other interface here) but configured as
if it were not, so AUTH is refused until STARTTLS. Every submission goes through the send
endpoint's accept path: the tests check the outcome the SMTP reply reports against the
stored email, for each oversight outcome.
"""

from __future__ import annotations

import base64
import smtplib
import socket
import ssl
from collections.abc import Iterator
from email.utils import make_msgid
from pathlib import Path

import pytest
from django.core.cache import cache
from django.db import OperationalError
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from accounts.codes import ATTEMPT_LIMITS, SMTP_LOGIN
from accounts.models import ApiKey
from mailboxes import smtp
from mailboxes.models import Email, EmailStatus, OversightMode
from mailboxes.smtp import smtp_controller
from mailboxes.smtp_tls import self_signed_pair_create
from tests.conftest import Tenant, key_for
from tests.inbound.conftest import build_mime

# The listener serves from its own threads and connections: the rows must be committed.
pytestmark = pytest.mark.django_db(transaction=True)

RECIPIENT = "client@example.org"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("tls")
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    self_signed_pair_create(cert_file, key_file, hostname="localhost")
    return cert_file, key_file


@pytest.fixture
def listener(certificate: tuple[Path, Path]) -> Iterator[int]:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(*certificate)
    port = _free_port()
    controller = smtp_controller(
        host="127.0.0.1", port=port, tls_context=server_context, require_tls=True
    )
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@pytest.fixture
def client_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(certificate[0]))
    context.check_hostname = False  # the test connects to 127.0.0.1, the cert names localhost
    return context


@pytest.fixture
def send_key(owner: Tenant) -> str:
    return key_for(owner.account, "send")[1]


def _connect(port: int, context: ssl.SSLContext) -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", port, timeout=10)
    client.starttls(context=context)
    client.ehlo()
    return client


def _auth_plain(client: smtplib.SMTP, login: str, password: str) -> tuple[int, bytes]:
    """One AUTH PLAIN exchange (smtplib's login() would retry with LOGIN on failure)."""
    blob = base64.b64encode(f"\0{login}\0{password}".encode()).decode()
    return client.docmd("AUTH", f"PLAIN {blob}")


def _submit(
    client: smtplib.SMTP, raw: bytes, *, sender: str, recipients: list[str]
) -> tuple[int, str]:
    """MAIL, RCPT and DATA; the DATA reply's code and text, whatever the code."""
    code, reply = client.mail(sender)
    assert code == 250, reply
    for address in recipients:
        code, reply = client.rcpt(address)
        assert code == 250, reply
    try:
        # SMTP carries CRLF lines, as a mail client sends them (smtplib sends bytes as they
        # are): with bare LFs, a body line "." stuffed to ".." is not a line to the server.
        code, reply = client.data(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    except smtplib.SMTPDataError as error:
        return error.smtp_code, error.smtp_error.decode()
    return code, reply.decode()


@pytest.fixture
def session(
    listener: int, client_context: ssl.SSLContext, owner: Tenant, send_key: str
) -> Iterator[smtplib.SMTP]:
    client = _connect(listener, client_context)
    code, reply = _auth_plain(client, owner.mailbox.address, send_key)
    assert code == 235, reply
    try:
        yield client
    finally:
        client.close()


def test_auth_is_refused_before_starttls(listener: int, owner: Tenant, send_key: str) -> None:
    with smtplib.SMTP("127.0.0.1", listener, timeout=10) as client:
        client.ehlo()
        assert not client.has_extn("auth")  # not even offered in the clear
        code, _ = _auth_plain(client, owner.mailbox.address, send_key)
    assert code == 538


def test_accepted_send_goes_through_the_send_path(owner: Tenant, session: smtplib.SMTP) -> None:
    raw = build_mime(
        to=RECIPIENT,
        sender=f"Agent <{owner.mailbox.address}>",
        subject="Over SMTP",
        text="Hello from smtplib.\n",
        cc="boss@example.org",
        attachments=[("notes.txt", "text/plain", b"some notes")],
    )
    code, reply = _submit(
        session,
        raw,
        sender=owner.mailbox.address,
        recipients=[RECIPIENT, "boss@example.org", "hidden@example.org"],
    )
    assert code == 250, reply
    email = Email.objects.get(mailbox=owner.mailbox)
    assert reply.startswith(f"2.0.0 {email.pk} accepted")
    assert email.to == [RECIPIENT]
    assert email.cc == ["boss@example.org"]
    assert email.bcc == ["hidden@example.org"]  # envelope-only recipients are bcc
    assert email.subject == "Over SMTP"
    assert email.markdown == "Hello from smtplib."
    assert email.from_address == owner.mailbox.address
    assert [(a.filename, bytes(a.content)) for a in email.attachments.all()] == [
        ("notes.txt", b"some notes")
    ]
    assert email.sent_by_key is not None
    assert email.status not in (EmailStatus.REJECTED, EmailStatus.PENDING_SEND_APPROVAL)


def test_login_also_works(
    listener: int, client_context: ssl.SSLContext, owner: Tenant, send_key: str
) -> None:
    with _connect(listener, client_context) as client:
        client.user, client.password = owner.mailbox.address, send_key
        code, _ = client.auth("LOGIN", client.auth_login)
    assert code == 235


def test_gated_mailbox_holds_submitted_mail(owner: Tenant, session: smtplib.SMTP) -> None:
    owner.mailbox.oversight_mode = OversightMode.GATED_SEND
    owner.mailbox.save(update_fields=["oversight_mode"])
    raw = build_mime(to=RECIPIENT, sender=owner.mailbox.address, subject="Needs approval")
    code, reply = _submit(session, raw, sender=owner.mailbox.address, recipients=[RECIPIENT])
    assert code == 250, reply
    email = Email.objects.get(mailbox=owner.mailbox)
    assert email.pk in reply
    assert "pending_send_approval" in reply
    # The scan ran in-process after the commit, before the reply: the email waits.
    assert email.status == EmailStatus.PENDING_SEND_APPROVAL


def test_a_rule_decides_submitted_mail(owner: Tenant, session: smtplib.SMTP) -> None:
    # An autonomous mailbox whose rule holds mail to anyone it never wrote to.
    owner.mailbox.oversight_rules = [
        {
            "name": "strangers",
            "direction": "outbound",
            "match": {"first_contact": True},
            "action": "hold",
        }
    ]
    owner.mailbox.save(update_fields=["oversight_rules"])
    raw = build_mime(to=RECIPIENT, sender=owner.mailbox.address, subject="First contact")
    code, reply = _submit(session, raw, sender=owner.mailbox.address, recipients=[RECIPIENT])
    assert code == 250, reply
    assert Email.objects.get(mailbox=owner.mailbox).status == EmailStatus.PENDING_SEND_APPROVAL


def test_the_stop_switch_holds_submitted_mail(owner: Tenant, session: smtplib.SMTP) -> None:
    owner.account.sending_stopped = True
    owner.account.save(update_fields=["sending_stopped"])
    raw = build_mime(to=RECIPIENT, sender=owner.mailbox.address, subject="Stopped")
    code, reply = _submit(session, raw, sender=owner.mailbox.address, recipients=[RECIPIENT])
    assert code == 250, reply
    assert "pending_send_approval" in reply
    assert Email.objects.get(mailbox=owner.mailbox).status == EmailStatus.PENDING_SEND_APPROVAL


def test_read_only_mailbox_refuses_with_the_catalog_code(
    owner: Tenant, session: smtplib.SMTP
) -> None:
    owner.mailbox.oversight_mode = OversightMode.READ_ONLY
    owner.mailbox.save(update_fields=["oversight_mode"])
    raw = build_mime(to=RECIPIENT, sender=owner.mailbox.address)
    code, reply = _submit(session, raw, sender=owner.mailbox.address, recipients=[RECIPIENT])
    assert code == 554
    assert reply.startswith("5.7.1 mailbox_read_only: ")
    assert not Email.objects.exists()


def test_suppressed_recipient_refuses_with_the_catalog_code(
    owner: Tenant, session: smtplib.SMTP
) -> None:
    owner.account.suppressions.create(email_address=RECIPIENT, reason="manual")
    raw = build_mime(to=RECIPIENT, sender=owner.mailbox.address)
    code, reply = _submit(session, raw, sender=owner.mailbox.address, recipients=[RECIPIENT])
    assert (code, reply.split(":")[0]) == (554, "5.7.1 recipient_suppressed")
    assert not Email.objects.exists()


def test_resubmitting_a_message_id_stores_one_email(owner: Tenant, session: smtplib.SMTP) -> None:
    raw = build_mime(to=RECIPIENT, sender=owner.mailbox.address, message_id=make_msgid())
    first = _submit(session, raw, sender=owner.mailbox.address, recipients=[RECIPIENT])
    second = _submit(session, raw, sender=owner.mailbox.address, recipients=[RECIPIENT])
    email = Email.objects.get(mailbox=owner.mailbox)
    assert first[0] == second[0] == 250
    assert email.pk in first[1]
    assert second[1] == f"2.0.0 {email.pk} already accepted (a resubmission of this Message-ID)"


def test_a_key_revoked_during_the_session_submits_nothing(
    owner: Tenant, session: smtplib.SMTP
) -> None:
    ApiKey.objects.filter(account=owner.account).update(is_active=False)
    raw = build_mime(to=RECIPIENT, sender=owner.mailbox.address)
    code, reply = _submit(session, raw, sender=owner.mailbox.address, recipients=[RECIPIENT])
    assert (code, reply.split(":")[0]) == (554, "5.7.1 invalid_api_key")
    assert not Email.objects.exists()


def test_a_long_message_id_still_makes_resubmission_idempotent(
    owner: Tenant, session: smtplib.SMTP
) -> None:
    raw = build_mime(
        to=RECIPIENT, sender=owner.mailbox.address, message_id=f"<{'x' * 300}@example.org>"
    )
    first = _submit(session, raw, sender=owner.mailbox.address, recipients=[RECIPIENT])
    second = _submit(session, raw, sender=owner.mailbox.address, recipients=[RECIPIENT])
    assert (first[0], second[0]) == (250, 250)
    assert "already accepted" in second[1]
    assert Email.objects.count() == 1


def test_a_from_other_than_the_mailbox_is_refused(owner: Tenant, session: smtplib.SMTP) -> None:
    # The envelope sender is checked at MAIL...
    code, reply = session.mail("someone@example.org")
    assert code == 550
    assert b"validation_error" in reply
    session.rset()
    # ...and the From header at DATA.
    raw = build_mime(to=RECIPIENT, sender="Boss <ceo@acme.example>")
    code, text = _submit(session, raw, sender=owner.mailbox.address, recipients=[RECIPIENT])
    assert code == 554
    assert text.startswith("5.7.1 validation_error: From must be the mailbox")
    assert not Email.objects.exists()


def test_unauthenticated_clients_cannot_relay(
    listener: int, client_context: ssl.SSLContext, owner: Tenant
) -> None:
    with _connect(listener, client_context) as client:
        client.mail(owner.mailbox.address)
        code, reply = client.rcpt(RECIPIENT)
        assert code == 550, reply
        client.rset()
        # Mail for a hosted mailbox still arrives without a login.
        raw = build_mime(to=owner.mailbox.address)
        assert client.sendmail("alice@example.org", [owner.mailbox.address], raw) == {}
    [email] = Email.objects.all()
    assert email.direction == "inbound"


def test_key_of_another_account_or_without_send_scope_is_refused(
    listener: int, client_context: ssl.SSLContext, owner: Tenant, other: Tenant
) -> None:
    read_key = key_for(owner.account, "read")[1]
    other_key = key_for(other.account, "send")[1]
    with _connect(listener, client_context) as client:
        code, reply = _auth_plain(client, owner.mailbox.address, read_key)
        assert (code, reply.split(b":")[0]) == (535, b"5.7.8 insufficient_permissions")
        code, reply = _auth_plain(client, owner.mailbox.address, other_key)
        assert (code, reply.split(b":")[0]) == (535, b"5.7.8 invalid_api_key")


def test_bad_keys_are_attempt_limited(
    listener: int, client_context: ssl.SSLContext, owner: Tenant, send_key: str
) -> None:
    budget = ATTEMPT_LIMITS[SMTP_LOGIN].per_source
    with _connect(listener, client_context) as client:
        for attempt in range(budget):
            code, reply = _auth_plain(client, owner.mailbox.address, f"mm_live_wrong{attempt:016d}")
            assert (code, reply.split(b":")[0]) == (535, b"5.7.8 invalid_api_key")
        # Spent: even the right key is not looked at any more from this address.
        code, reply = _auth_plain(client, owner.mailbox.address, send_key)
    assert code == 454
    assert reply.startswith(b"4.7.0 too_many_attempts: Too many SMTP logins failed")


def test_a_failing_database_at_login_is_a_temporary_failure(
    listener: int, client_context: ssl.SSLContext, owner: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(**kwargs: object) -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr(smtp, "submission_authenticate", down)
    with _connect(listener, client_context) as client:
        code, reply = _auth_plain(client, owner.mailbox.address, "mm_live_anything_at_all")
    assert (code, reply.split(b":")[0]) == (454, b"4.7.0 internal_error")


def test_a_right_key_gives_its_attempt_back(
    listener: int, client_context: ssl.SSLContext, owner: Tenant, send_key: str
) -> None:
    for _ in range(ATTEMPT_LIMITS[SMTP_LOGIN].per_source + 1):
        with _connect(listener, client_context) as client:
            assert _auth_plain(client, owner.mailbox.address, send_key)[0] == 235


_header_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")), max_size=80
).map(lambda value: " ".join(value.split()))
# No bare CR: SMTP carries lines, and a lone CR arrives as a line break like any other.
_body_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\r"),
    max_size=400,
)


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(subject=_header_text.filter(bool), text=_body_text)
@example(subject="Dots", text=".")
@example(subject="Dots", text="a\n.\n..b")
def test_submitted_subject_and_body_are_what_the_api_would_store(
    owner: Tenant, listener: int, client_context: ssl.SSLContext, subject: str, text: str
) -> None:
    cache.clear()
    key = key_for(owner.account, "send")[1]
    raw = build_mime(to=RECIPIENT, sender=owner.mailbox.address, subject=subject, text=text)
    with _connect(listener, client_context) as client:
        assert _auth_plain(client, owner.mailbox.address, key)[0] == 235
        code, reply = _submit(client, raw, sender=owner.mailbox.address, recipients=[RECIPIENT])
    if code == 250:
        email = Email.objects.get(pk=reply.split()[1])
        assert email.subject == subject
        assert email.markdown == text.strip() or not text.strip()
    else:
        # Refused the way the API refuses that body (an empty markdown, say).
        assert code == 554, reply
        assert reply.split(":")[0] in ("5.7.1 missing_parameter", "5.7.1 invalid_parameter")
