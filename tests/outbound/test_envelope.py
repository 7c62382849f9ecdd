"""Two shortcuts on the way to the relay, held to what they replace.

The relay backend gives a plain addr-spec to SMTP as it is, instead of parsing it with the
email package's header parser (Django's ``prep_address``): for any address, the result
(or the refusal) is Django's. The message's multipart boundaries are chosen when it is
built, instead of by the generator at flatten time: every multipart part has one of its
own, it changes from message to message, and the parts read back as they were written,
whatever lines the content holds.
"""

from __future__ import annotations

import email
import email.policy
from typing import Any

import pytest
from django.core.mail.backends import smtp
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mailboxes.backends import PLAIN_ADDR_SPEC, SMTPRelayBackend
from mailboxes.models import Direction, EmailStatus
from mailboxes.services.outbound.message import message_build
from tests.conftest import Tenant
from tests.inbound.conftest import make_email


def _prepared(prepare: Any, address: str) -> tuple[str, str]:
    """The address, or the error's type: on some text (a lone "<") the email package's
    parser raises IndexError rather than ValueError, and then both must."""
    try:
        return ("address", prepare(address))
    except Exception as error:  # whatever Django's raises, ours must raise too
        return ("refused", type(error).__name__)


@settings(max_examples=400, deadline=None)
@given(
    address=st.one_of(
        st.from_regex(PLAIN_ADDR_SPEC, fullmatch=True),
        st.text(max_size=40),
        st.from_regex(r"[^@]{1,20}@[^@]{1,20}", fullmatch=True),
    )
)
@example(address="Alice <alice@example.org>")
@example(address="alice@example.org\r\nBcc: mallory@example.org")
@example(address="jörg@exämple.org")
@example(address="bob@xn--exmple-cua.org")
@example(address='"odd local"@example.org')
@example(address="<")
def test_an_envelope_address_is_what_django_makes_of_it(address: str) -> None:
    # prep_address reads nothing of the backend's configuration.
    backend = object.__new__(SMTPRelayBackend)
    django = smtp.EmailBackend.prep_address.__get__(backend)
    assert _prepared(backend.prep_address, address) == _prepared(django, address)


_lines = st.lists(
    st.one_of(
        st.text(alphabet="-=_abm0123456789 ", max_size=40),
        st.sampled_from(["--", "--=_mm", "-- ", "--=_mm0123456789abcdef--"]),
    ),
    max_size=8,
)


@pytest.mark.django_db
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text_lines=_lines, html_lines=_lines)
def test_each_multipart_has_its_own_boundary_and_reads_back(
    owner: Tenant, text_lines: list[str], html_lines: list[str]
) -> None:
    text = "\n".join(["Hello", *text_lines]) + "\n"
    html = "<p>Hello</p>\n" + "\n".join(html_lines) + "\n"
    sent = make_email(
        owner.mailbox,
        direction=Direction.OUTBOUND,
        status=EmailStatus.SENDING,
        to=["carol@example.org"],
        text=text,
        html=html,
    )
    first, second = (message_build(email=sent, copy_operator=False) for _ in range(2))
    parsed = email.message_from_bytes(first.raw, policy=email.policy.default)
    boundaries = [part.get_boundary() for part in parsed.walk() if part.is_multipart()]
    assert boundaries
    assert all(boundaries)
    assert len(set(boundaries)) == len(boundaries)
    again = email.message_from_bytes(second.raw, policy=email.policy.default)
    assert not set(boundaries) & {p.get_boundary() for p in again.walk() if p.is_multipart()}
    plain = parsed.get_body(preferencelist=("plain",))
    rich = parsed.get_body(preferencelist=("html",))
    assert plain is not None
    assert rich is not None
    # Each as written, then the mailbox's compliance footer.
    assert plain.get_content().replace("\r\n", "\n").startswith(f"{text.rstrip()}\n\n-- \n")
    assert rich.get_content().replace("\r\n", "\n").startswith(html)
