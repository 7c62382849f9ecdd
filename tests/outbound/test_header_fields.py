"""Nothing the agent sends can keep the operator uninformed: header text is judged on entry.

Every field whose value ends up in a header (subjects, display names, every address,
attachment names and content types) is fed generated text with a control character in it,
on every path that accepts it: send, reply, schedule edit, mailbox create, update and
configure. Each answers 400 ``invalid_parameter`` naming the field, and nothing is stored.
Addresses are judged by one library (``multimail.addresses``): quoted local parts with
escapes are refused, and a valid address goes out byte for byte as it was sent. An email
that fails to build later still becomes ``send_failed`` and the operator is told.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from accounts.models import Account
from mailboxes.models import Email, EmailStatus, Mailbox
from mailboxes.services.outbound import pipeline
from tests.conftest import Tenant, assert_error

pytestmark = pytest.mark.django_db

checked = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Plain text around the bad character: letters, digits, spaces and punctuation.
_plain = st.text(
    alphabet=st.characters(codec="ascii", categories=["L", "N", "P", "Zs"]), max_size=12
)
# CR, LF, NUL and every other C0/C1 control, plus the Unicode line and paragraph separators.
_control = st.one_of(
    st.sampled_from(["\r", "\n", "\r\n", "\x00", "\t", "\x1b", "\x85", "\u2028", "\u2029"]),
    st.characters(categories=["Cc"]),
)
# Text with a control character anywhere, the very first and last positions included.
bad_text = st.tuples(_plain, _control, _plain).map("".join)
bad_address = st.tuples(st.sampled_from(["ann", "a.b", "x"]), _control).map(
    lambda pair: f"{pair[0]}{pair[1]}@example.org"
) | st.tuples(st.sampled_from(["ann", "x"]), _control).map(
    lambda pair: f"{pair[0]}@exa{pair[1]}mple.org"
)


def _attachment(**overrides: str) -> dict[str, str]:
    return {
        "name": "notes.txt",
        "content_base64": base64.b64encode(b"hello").decode(),
        "content_type": "text/plain",
        **overrides,
    }


def _later() -> str:
    return (timezone.now() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")


SEND = {"to": ["client@example.org"], "subject": "Quarterly numbers", "markdown": "Hello"}

# (field as the error names it, how it goes into a send/reply/schedule body, value strategy)
MESSAGE_FIELDS: list[tuple[str, Callable[[Any], dict[str, Any]], st.SearchStrategy[str]]] = [
    ("subject", lambda value: {"subject": value}, bad_text),
    ("to.0", lambda value: {"to": [value]}, bad_address),
    ("cc.0", lambda value: {"cc": [value]}, bad_address),
    ("bcc.0", lambda value: {"bcc": ["ok@example.org", value]}, bad_address),
    ("attachments.0.name", lambda value: {"attachments": [_attachment(name=value)]}, bad_text),
    (
        "attachments.0.content_type",
        lambda value: {"attachments": [_attachment(content_type=value)]},
        bad_text,
    ),
]
# The error names the second Bcc: the first is valid.
PARAM_OF = {"bcc.0": "bcc.1"}


def _refused(response: Any, param: str) -> None:
    assert_error(response, "invalid_parameter", param=PARAM_OF.get(param, param))


@pytest.fixture
def inbound(owner: Tenant) -> Email:
    """Mail the agent may answer."""
    return Email.objects.create(
        account=owner.account,
        mailbox=owner.mailbox,
        direction="inbound",
        status=EmailStatus.UNREAD,
        from_address="client@example.org",
        to=[owner.mailbox.address],
        subject="Question",
        markdown="Hi",
        message_id="<q@example.org>",
    )


@pytest.mark.parametrize(("param", "place", "values"), MESSAGE_FIELDS)
def test_send_refuses_header_text_with_control_characters(
    api: Any, owner: Tenant, param: str, place: Callable[[Any], dict[str, Any]], values: Any
) -> None:
    client = api("send")

    @checked
    @given(value=values)
    def check(value: str) -> None:
        response = client.post(
            f"/v1/mailboxes/{owner.mailbox.pk}/send", {**SEND, **place(value)}, format="json"
        )
        _refused(response, param)
        assert not Email.objects.exists()

    check()


@pytest.mark.parametrize(
    ("param", "place", "values"),
    [field for field in MESSAGE_FIELDS if field[0] not in {"subject", "to.0"}],
)
def test_reply_refuses_header_text_with_control_characters(
    api: Any,
    owner: Tenant,
    inbound: Email,
    param: str,
    place: Callable[[Any], dict[str, Any]],
    values: Any,
) -> None:
    client = api("send")

    @checked
    @given(value=values)
    def check(value: str) -> None:
        response = client.post(
            f"/v1/mailboxes/{owner.mailbox.pk}/reply/{inbound.pk}",
            {"markdown": "Thanks", **place(value)},
            format="json",
        )
        _refused(response, param)
        assert list(Email.objects.values_list("pk", flat=True)) == [inbound.pk]

    check()


@pytest.mark.parametrize(
    ("param", "place", "values"),
    [field for field in MESSAGE_FIELDS if not field[0].startswith("attachments")],
)
def test_schedule_edit_refuses_header_text_with_control_characters(
    api: Any,
    owner: Tenant,
    django_capture_on_commit_callbacks: Any,
    param: str,
    place: Callable[[Any], dict[str, Any]],
    values: Any,
) -> None:
    client = api("send")
    with django_capture_on_commit_callbacks(execute=True):
        created = client.post(
            f"/v1/mailboxes/{owner.mailbox.pk}/send", {**SEND, "send_at": _later()}, format="json"
        )
    assert created.status_code == 202, created.content
    email = Email.objects.get(pk=created.json()["id"])
    before = (email.subject, email.to, email.cc, email.bcc, email.status)

    @checked
    @given(value=values)
    def check(value: str) -> None:
        response = client.patch(
            f"/v1/mailboxes/{owner.mailbox.pk}/emails/{email.pk}/schedule",
            place(value),
            format="json",
        )
        _refused(response, param)
        email.refresh_from_db()
        assert (email.subject, email.to, email.cc, email.bcc, email.status) == before

    check()


MAILBOX_FIELDS = [
    ("display_name", bad_text),
    ("auto_cc", bad_address),
    ("auto_bcc", bad_address),
]


@pytest.mark.parametrize("path", ["", "/configure"])
@pytest.mark.parametrize(("param", "values"), MAILBOX_FIELDS)
def test_mailbox_update_refuses_header_text_with_control_characters(
    api: Any, owner: Tenant, path: str, param: str, values: Any
) -> None:
    client = api("admin")

    @checked
    @given(value=values)
    def check(value: str) -> None:
        response = client.patch(
            f"/v1/mailboxes/{owner.mailbox.pk}{path}", {param: value}, format="json"
        )
        _refused(response, param)
        mailbox = Mailbox.objects.get(pk=owner.mailbox.pk)
        assert (mailbox.display_name, mailbox.auto_cc, mailbox.auto_bcc) == ("", None, None)

    check()


@pytest.mark.parametrize(
    ("param", "body"),
    [
        ("display_name", lambda value: {"address_local": "sales", "display_name": value}),
        ("address_local", lambda value: {"address_local": value}),
    ],
)
def test_mailbox_create_refuses_header_text_with_control_characters(
    api: Any, owner: Tenant, param: str, body: Callable[[str], dict[str, Any]]
) -> None:
    client = api("admin")

    @checked
    @given(value=bad_text)
    def check(value: str) -> None:
        _refused(client.post("/v1/mailboxes", body(value), format="json"), param)
        assert list(Mailbox.objects.values_list("pk", flat=True)) == [owner.mailbox.pk]

    check()


# --- Addresses: one library, and what is accepted goes out unchanged -------------------

# Local parts the mail stack would rewrite on the way out ("a\r\nb" became "arnb"), or
# forms that are not a bare address at all.
_quoted_char = st.sampled_from(["\\r", "\\n", '\\"', "\\\\", " ", "a", "@", ",", "\\"])
refused_address = st.one_of(
    st.lists(_quoted_char, min_size=1, max_size=6).map(
        lambda chars: f'"{"".join(chars)}"@example.org'
    ),
    st.just('"a\\r\\nb"@example.org'),
    st.sampled_from(
        [
            "Ann <ann@example.org>",
            "ann@[192.0.2.1]",
            "ann@example.org, bob@example.org",
            "ann(comment)@example.org",
            "ann..b@example.org",
            "ann@example",
            "ünï@example.org",
            "ann@",
            "@example.org",
        ]
    ),
)


@checked
@given(address=refused_address)
def test_addresses_the_mail_stack_would_rewrite_are_refused(
    api: Any, owner: Tenant, address: str
) -> None:
    response = api("send").post(
        f"/v1/mailboxes/{owner.mailbox.pk}/send", {**SEND, "to": [address]}, format="json"
    )
    _refused(response, "to.0")
    assert not Email.objects.exists()


_atom = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~",
    min_size=1,
    max_size=10,
)
accepted_address = st.tuples(
    st.lists(_atom, min_size=1, max_size=3).map(".".join),
    st.sampled_from(["example.org", "Example.COM", "mail.example.net"]),
).map(lambda parts: f"{parts[0]}@{parts[1]}")


@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(address=accepted_address)
def test_an_accepted_address_goes_out_byte_for_byte(
    api: Any, owner: Tenant, django_capture_on_commit_callbacks: Any, address: str
) -> None:
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = api("send").post(
            f"/v1/mailboxes/{owner.mailbox.pk}/send",
            {**SEND, "to": [address], "idempotency_key": address},
            format="json",
        )
    assert response.status_code == 202, response.content
    email = Email.objects.get(pk=response.json()["id"])
    assert email.to == [address]
    email.refresh_from_db()
    assert email.status == EmailStatus.SENT, email.failure_reason
    [message] = [m for m in mail.outbox if address in m.to]
    assert message.to == [address]
    raw = message.message().as_bytes()
    assert f"To: {address}".encode() in raw


# --- A later failure never leaves the email in a transient status ----------------------


def test_an_email_whose_message_cannot_be_built_fails_and_the_operator_is_told(
    api: Any, owner: Tenant, django_capture_on_commit_callbacks: Any, monkeypatch: Any
) -> None:
    def unbuildable(**_: Any) -> Any:
        raise ValueError("header value contains a linefeed")

    monkeypatch.setattr(pipeline, "message_build", unbuildable)
    with django_capture_on_commit_callbacks(execute=True):
        response = api("send").post(f"/v1/mailboxes/{owner.mailbox.pk}/send", SEND, format="json")
    assert response.status_code == 202, response.content
    email = Email.objects.get(pk=response.json()["id"])
    assert email.status == EmailStatus.SEND_FAILED
    assert email.failure_reason.startswith("message_unbuildable: ")
    [notice] = [m for m in mail.outbox if m.subject.startswith("[MultiMail] Not sent: ")]
    assert notice.to == [owner.account.oversight_email]
    assert email.failure_reason in notice.body


def test_operator_and_account_names_refuse_control_characters(api: Any, owner: Tenant) -> None:
    """The operator's name and the account's name go into operator mail and the identity
    header: the same rule, at signup and on PATCH /v1/account."""
    client = api("admin")
    pow_solution = {"algorithm": "SHA-256", "challenge": "c", "number": 1, "salt": "s"}
    signup = {
        "oversight_email": "boss@initech.example",
        "accepted_tos": True,
        "accepted_operator_agreement": True,
        "accepted_anti_spam_policy": True,
        # Never checked: the name is refused first.
        "pow_solution": {**pow_solution, "signature": "x"},
    }

    @checked
    @given(value=bad_text)
    def check(value: str) -> None:
        response = APIClient().post(
            "/v1/account", {**signup, "operator_name": value}, format="json"
        )
        _refused(response, "operator_name")
        _refused(client.patch("/v1/account", {"name": value}, format="json"), "name")
        assert list(Account.objects.values_list("name", flat=True)) == ["Acme Org"]

    check()
