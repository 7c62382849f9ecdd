"""A live server and MultiMail's own Python SDK pointed at its compat base URL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from accounts.models import Account
from tests.compat.sdk import MultiMail
from tests.conftest import key_for


@pytest.fixture
def base_url(live_server: Any) -> str:
    """What an operator gives MultiMail's clients as their API URL."""
    return f"{live_server.url}/compat/multimail"


@pytest.fixture
def sdk_for(base_url: str) -> Iterator[Callable[..., Any]]:
    """``sdk_for(account, "read", "send")``: the official client with a new key of those scopes."""
    clients: list[Any] = []

    def build(account: Account, *scopes: str) -> Any:
        _, raw = key_for(account, *scopes)
        client = MultiMail(raw, base_url=base_url, timeout=30)
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()
