from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _public_dns(public_dns: None) -> None:
    """Webhook targets resolve without real DNS; the guard's own behaviour is tested with
    the webhooks."""
