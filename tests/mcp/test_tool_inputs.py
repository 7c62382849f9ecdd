"""Whatever arguments an agent sends, a tool answers a result or a tool error in the
catalog's terms (code, message, fix), never a crash or a stack trace: property-based, over
real HTTP with the official SDK's client."""

from __future__ import annotations

import re
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.services import api_key_create
from multimail.errors import REGISTRY
from tests.conftest import make_tenant
from tests.mcp.conftest import mcp_session

pytestmark = pytest.mark.django_db(transaction=True)

ERROR = re.compile(r"^(Error executing tool \w+: )?Error (\w+) \(HTTP \d{3}\): .+\nFix: .+", re.S)
TOOLS = ["send_email", "check_inbox", "read_email", "tag_email", "download_attachment"]
FIELDS = ["to", "subject", "markdown", "cc", "email_id", "mailbox_id", "status", "limit",
          "since_id", "action", "tags", "filename", "send_at", "attachments"]  # fmt: skip
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


@pytest.fixture
def key(live_server_url: str) -> str:
    """One tenant's key for every example (the fixtures are set up once per test)."""
    tenant = make_tenant("fuzz")
    return api_key_create(account=tenant.account, name="fuzz", scopes=["read", "send"])[1]


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    calls=st.lists(
        st.tuples(st.sampled_from(TOOLS), st.dictionaries(st.sampled_from(FIELDS), values)),
        min_size=1,
        max_size=3,
    )
)
def test_any_arguments_answer_a_result_or_a_catalog_error(
    live_server_url: str, key: str, calls: list[tuple[str, dict[str, Any]]]
) -> None:
    async def scenario() -> list[Any]:
        async with mcp_session(live_server_url, key) as session:
            return [await session.call_tool(name, arguments) for name, arguments in calls]

    for result in anyio.run(scenario):
        text = result.content[0].text
        assert "Traceback" not in text
        if result.is_error:
            matched = ERROR.match(text)
            assert matched, text
            assert matched.group(2) in REGISTRY
