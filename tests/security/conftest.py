from __future__ import annotations

import pytest

from mailboxes.services import netguard


@pytest.fixture(autouse=True)
def _public_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Webhook targets resolve to a public address without real DNS (there is no network
    here); the guard's own behaviour is tested with the webhooks."""
    monkeypatch.setattr(netguard, "resolve_addresses", lambda host, port: ["93.184.216.34"])
