"""Mailbox addresses and account slugs: whatever is typed, what is accepted is clean.

An accepted value ends up in mail headers (From, Reply-To) and in the tenant's
subdomain, so it must never carry whitespace, line breaks or anything outside the
documented alphabet — and everything the documentation allows must be accepted.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from accounts.slugs import slug_validate
from mailboxes.services.mailboxes import mailbox_address_resolve
from multimail.errors import ApiError
from tests.conftest import Tenant

pytestmark = pytest.mark.django_db

LOCAL_PART = r"[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?"
SLUG = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"

tricky = st.sampled_from(
    ["\n", "\r\n", "\t", " ", "\x00", "@", "..", ".", "-", "_", "A", "é", "\u2028", "%", "+"]
)
typed = st.lists(
    st.one_of(st.text(max_size=8), tricky, st.from_regex(LOCAL_PART, fullmatch=True)), max_size=6
).map("".join)
fuzz_settings = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _attempt(call: Callable[[], Any]) -> tuple[Any, ApiError | None]:
    try:
        return call(), None
    except ApiError as error:
        return None, error


@fuzz_settings
@given(local=typed)
@example(local="agent\n")
@example(local="agent\n@acme.multimail.localhost")
@example(local="agent\r\nBcc: victim@example.com")
def test_accepted_mailbox_addresses_are_clean(owner: Tenant, local: str) -> None:
    own_domain = f"{owner.account.slug}.multimail.localhost"
    result, error = _attempt(
        lambda: mailbox_address_resolve(account=owner.account, address_local=local)
    )
    if error is not None:
        assert (error.code, error.param) == ("invalid_parameter", "address_local")
        return
    address, domain = result
    assert domain is None
    assert re.fullmatch(rf"{LOCAL_PART}@{re.escape(own_domain)}", address), repr(address)


@fuzz_settings
@given(local=st.from_regex(LOCAL_PART, fullmatch=True))
def test_every_documented_local_part_is_accepted(owner: Tenant, local: str) -> None:
    address, _ = mailbox_address_resolve(account=owner.account, address_local=local)
    assert address == f"{local}@{owner.account.slug}.multimail.localhost"


@fuzz_settings
@given(slug=typed)
@example(slug="acme\n")
@example(slug="Acme-Corp")
def test_accepted_slugs_are_clean_and_stable(slug: str) -> None:
    clean, error = _attempt(lambda: slug_validate(slug=slug))
    if error is not None:
        assert (error.code, error.param) == ("invalid_parameter", "slug")
        return
    assert re.fullmatch(SLUG, clean), repr(clean)
    assert 2 <= len(clean) <= 63
    assert slug_validate(slug=clean) == clean


@fuzz_settings
@given(slug=st.from_regex(SLUG, fullmatch=True).filter(lambda s: len(s) >= 2))
def test_every_documented_slug_is_accepted(slug: str, db: Any) -> None:
    assert slug_validate(slug=slug) == slug
