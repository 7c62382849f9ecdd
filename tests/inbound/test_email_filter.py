"""EmailFilter, the one filter of email lists: whatever a client sends, a filter either
applies or is refused as invalid_parameter naming it."""

from __future__ import annotations

import pytest
from django.http import QueryDict
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mailboxes.filters import EmailFilter
from mailboxes.models import Email
from multimail.errors import ApiError
from multimail.filters import filtered
from tests.conftest import Tenant

pytestmark = pytest.mark.django_db

PARAMS = list(EmailFilter.base_filters)
typed = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["sent,read", " TRUE ", "2026-01-31", "1700000000000", "\x00", " "]),
)


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(param=st.sampled_from(PARAMS), value=typed)
@example(param="sender", value="\x00")
@example(param="date_after", value="99999999999999999999")
def test_a_value_filters_or_is_refused_naming_its_parameter(
    owner: Tenant, param: str, value: str
) -> None:
    params = QueryDict(mutable=True)
    params[param] = value
    refused: ApiError | None = None
    try:
        emails = filtered(EmailFilter(params, queryset=Email.objects.filter(account=owner.account)))
        list(emails[:1])  # the database accepts every value the filter let through
    except ApiError as error:
        refused = error
    if refused is not None:
        assert (refused.code, refused.param) == ("invalid_parameter", param)


def test_the_first_bad_parameter_is_reported() -> None:
    params = {"has_attachments": "maybe", "direction": "sideways", "status": "nope"}
    with pytest.raises(ApiError) as raised:
        filtered(EmailFilter(params, queryset=Email.objects.none()))
    assert raised.value.param == "status"
