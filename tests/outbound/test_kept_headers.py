"""The outbound header registry keeps each parsed header for the next message, and its
folded form under the last policy it was folded under: a kept header must fold exactly as
a freshly parsed one, and a message flatten to the same bytes as with fresh headers,
however often and under whichever policy."""

from __future__ import annotations

import email.policy
from collections.abc import Callable
from email.headerregistry import HeaderRegistry
from email.message import EmailMessage
from email.policy import EmailPolicy
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailboxes.services.outbound.headers import (
    RAW_HEADERS,
    RawFoldedHeader,
    outbound_header_registry,
)
from mailboxes.services.outbound.message import _outbound_policy

NAMES = ("From", "To", "Cc", "Subject", "Content-Type", "MIME-Version", *RAW_HEADERS)
POLICIES = (email.policy.SMTP, email.policy.default, email.policy.SMTPUTF8)

values = st.one_of(
    st.text(max_size=300).map(lambda text: "".join(text.splitlines())),
    st.lists(st.emails(), min_size=1, max_size=4).map(", ".join),
    st.builds(
        lambda name, address: f'"{name}" <{address}>',
        st.text(max_size=40).map(lambda text: "".join(text.splitlines()).replace('"', "")),
        st.emails(),
    ),
)


def _fresh() -> HeaderRegistry:
    """The registry as it was before it kept headers: every value parsed anew."""
    registry = HeaderRegistry()
    for raw in RAW_HEADERS:
        registry.map_to_type(raw, RawFoldedHeader)  # type: ignore[arg-type]  # a mixin
    return registry


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(NAMES), value=values)
@example(name="MIME-Version", value="\u00b2")  # found by the generator: int() refuses it
def test_a_kept_header_folds_as_a_fresh_one(name: str, value: str) -> None:
    kept = outbound_header_registry()
    try:
        fresh = _fresh()(name, value)
    except Exception as error:  # whatever it is, the kept registry must raise it too
        # A value the email package cannot parse at all (a MIME-Version of digits that
        # are not ASCII): the kept registry refuses it the same way, and keeps nothing.
        with pytest.raises(type(error)):
            kept(name, value)
        return
    first = kept(name, value)
    again = kept(name, value)
    assert again is first  # kept, not parsed again
    for policy in POLICIES:
        expected = fresh.fold(policy=policy)
        # Folded twice, under each policy in turn: folding never changes the kept object.
        assert first.fold(policy=policy) == expected
        assert again.fold(policy=policy) == expected
    assert str(first) == str(fresh)
    assert type(first).__name__ == type(fresh).__name__


def _outcome(flatten: Callable[[], bytes]) -> Any:
    try:
        return flatten()
    except Exception as error:  # a header the email package refuses, the same way both times
        return type(error)


@settings(max_examples=200, deadline=None)
@given(
    headers=st.lists(st.tuples(st.sampled_from(NAMES), values), min_size=1, max_size=8),
    body=st.text(max_size=200),
)
def test_a_message_flattens_as_with_fresh_headers(
    headers: list[tuple[str, str]], body: str
) -> None:
    def flattened(policy: EmailPolicy[Any]) -> bytes:
        message = EmailMessage(policy=policy)
        for name, value in headers:
            message[name] = value
        message.set_content(body)
        return message.as_bytes()

    # The outbound policies in turn, each twice: folds kept under one are not reused
    # under another, and reused under the same.
    for base in (email.policy.SMTP, email.policy.SMTP, email.policy.default, email.policy.SMTP):
        kept = _outcome(lambda: flattened(_outbound_policy(base)))  # noqa: B023 (run now)
        fresh = _outcome(lambda: flattened(base.clone(header_factory=_fresh())))  # noqa: B023
        assert kept == fresh
