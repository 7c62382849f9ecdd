"""Property-based fuzzing of every operation in /v1/openapi.json.

Valid and invalid inputs (schemathesis, bounded and deterministic) are sent through the
real WSGI application with an admin key on a seeded tenant. Whatever comes in:

- no 5xx;
- every response matches the schema the API publishes for it;
- every error is the documented envelope, with a code from the registry, the registry's
  status for it and the request id of the response.

Operations that call out to Stripe are left out: without a reachable Stripe they answer
``upstream_error`` (502) or ``server_misconfigured`` (500) by design.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from accounts.services import api_key_create
from mailboxes.models import Direction, Email, EmailStatus
from multimail.errors import REGISTRY
from multimail.ids import new_id
from tests.conftest import make_tenant

# Calls to Stripe's API; covered with a fake Stripe in the billing tests.
EXTERNAL = r"^/v1/billing/(checkout|crypto-checkout|portal|cancel|pricing-checkout)$"

CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {
            "mode": "all",  # valid and invalid data
            "max-examples": 6,
            "deterministic": True,
            "no-shrink": True,
            "database": "none",
        },
        "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
    }
)


@pytest.fixture
def seeded(db: Any, settings: Any) -> dict[str, str]:
    """A tenant with an email, the ids the fuzzer puts in paths, and an admin key."""
    settings.API_RATE_LIMIT_READ_PER_MINUTE = 100_000
    settings.API_RATE_LIMIT_SEND_PER_MINUTE = 100_000
    # Provider webhooks answer webhook_unauthorized rather than server_misconfigured.
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": "fuzz:secret"}
    settings.STRIPE_WEBHOOK_SECRET = "whsec_fuzz"
    tenant = make_tenant("fuzz")
    email = Email.objects.create(
        account=tenant.account,
        mailbox=tenant.mailbox,
        direction=Direction.INBOUND,
        status=EmailStatus.UNREAD,
        from_address="sender@example.com",
        to=[tenant.mailbox.address],
        subject="Hello",
        markdown="Hi",
        thread_id=new_id(),
    )
    _, raw = api_key_create(account=tenant.account, name="fuzz", scopes=["admin", "send"])
    return {"key": raw, "mailbox": tenant.mailbox.id, "email": email.id}


def _load_schema() -> Any:
    from multimail.wsgi import application

    # Loaded at collection (schemathesis's lazy fixture loader does not run on this pytest);
    # building the schema touches no database.
    loaded = schemathesis.openapi.from_wsgi(
        "/v1/openapi.json",
        application,
        config=CONFIG,
        headers={"Accept": "application/vnd.oai.openapi+json"},
    )
    return loaded.exclude(path_regex=EXTERNAL)


schema = _load_schema()


@pytest.fixture(autouse=True)
def _share_the_test_connection() -> Iterator[None]:
    """Like Django's test client: calls share the test's transaction, so the per-request
    connection recycling must not close it."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def error_envelope(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx/5xx under /v1/ is the envelope of the error contract."""
    if response.status_code < 400 or not case.path.startswith("/v1/"):
        return None
    body = response.json()
    assert body["ok"] is False, body
    error = body["error"]
    entry = REGISTRY.get(error["code"])
    assert entry is not None, f"unregistered code {error['code']!r}"
    assert response.status_code == entry.status, (error["code"], response.status_code)
    assert error["message"]
    assert error["retryable"] is entry.is_retryable
    assert error["doc_url"].endswith(f"#{error['code']}")
    request_ids = response.headers.get("x-request-id") or response.headers.get("X-Request-Id")
    request_id = request_ids[0] if isinstance(request_ids, list) else request_ids
    assert body["meta"]["request_id"] == request_id
    if response.status_code in (429, 503):
        assert response.headers.get("retry-after") or response.headers.get("Retry-After")
    return True


def _real_ids(case: Any, seeded: dict[str, str]) -> None:
    """Put the tenant's own ids in paths so requests get past the lookup to the logic."""
    for name in list(case.path_parameters or {}):
        lowered = name.lower()
        if "mailbox" in lowered:
            case.path_parameters[name] = seeded["mailbox"]
        elif "email" in lowered and "address" not in lowered:
            case.path_parameters[name] = seeded["email"]


@schema.parametrize()
@hypothesis_settings(
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case: Any, seeded: dict[str, str]) -> None:
    _real_ids(case, seeded)
    response = case.call(headers={"Authorization": f"Bearer {seeded['key']}"})
    case.validate_response(
        response,
        checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
        additional_checks=[error_envelope],
    )
