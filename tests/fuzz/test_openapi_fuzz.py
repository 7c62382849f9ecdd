"""Property-based fuzzing of every operation in /v1/openapi.json, against a live server.

schemathesis reads the schema the server publishes and sends valid and invalid requests
(bounded and deterministic) over HTTP to ``live_server``, with every check it has, three
times: with an admin key, with a read key and with no key. Whatever comes in:

- no 5xx, and every status, header, content type and body matches the published schema;
- valid data is accepted and invalid data rejected; a request without a key is refused;
- every error is the documented envelope, with a code from the registry, the registry's
  status for it and the request id of the response.

Failures that are deliberate are listed in ``DELIBERATE`` with the reason for each; any
other failure, and any listed one that no longer happens, fails the test.

Operations that call out to Stripe are left out: without a reachable Stripe they answer
``upstream_error`` (502) or ``server_misconfigured`` (500) by design; the billing tests
cover them with a fake Stripe.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.core.failures import Failure, FailureGroup

from accounts.services import api_key_create
from mailboxes.models import Direction, Email, EmailStatus
from multimail.errors import REGISTRY
from multimail.ids import new_id
from tests.conftest import make_tenant

EXTERNAL = re.compile(r"^/v1/billing/(checkout|crypto-checkout|portal|cancel|pricing-checkout)$")
# Examples per operation and key: ~70 operations x 3 keys stay well under three minutes.
MAX_EXAMPLES = 4

CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {
            "mode": "all",  # valid and invalid data
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "no-shrink": True,
            "database": "none",
        },
        "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
    }
)

# Failures that are deliberate: for each operation, the failure kinds it may report under
# any key, and why. Every one is schemathesis's ``positive_data_acceptance`` check: a
# request the schema allows that the server refuses, on purpose, with a catalog error.
_CURSOR = (
    "cursor is opaque: only a value the server returned is valid (invalid_parameter), "
    "which no schema can enumerate"
)
_SECRET = "the code is a secret emailed to the operator: a schema-valid guess is wrong"
_NUL = "strings refuse NUL characters (invalid_parameter) on every field; not repeated"
_CONTENT = (
    "content rules a JSON Schema cannot state: base64 that decodes, executable "
    "attachments refused, recipients on the suppression list"
)
_ADDRESS = (
    "an address must be a plain one the mail stack cannot rewrite (no quoted local part, "
    "domain literal or special-use domain), and an oversight address may not be on a domain "
    "this server hosts: stricter than the schema's format email"
)
DELIBERATE: dict[str, str] = {
    **{
        operation: _ADDRESS
        for operation in (
            "PATCH /v1/account",
            "POST /v1/account/challenge",
            "POST /v1/account/resend-confirmation",
        )
    },
    **{
        f"GET {path}": _CURSOR
        for path in (
            "/v1/api-keys",
            "/v1/audit-log",
            "/v1/contacts",
            "/v1/domains",
            "/v1/emails",
            "/v1/mailboxes",
            "/v1/mailboxes/{mailbox_id}/emails",
            "/v1/suppression",
            "/v1/webhook-deliveries",
            "/v1/webhooks",
        )
    },
    "GET /v1/mailboxes/{mailbox_id}/emails": f"{_CURSOR}; and q must parse as a search "
    "(balanced quotes, at most 20 terms, something to look for besides exclusions)",
    "GET /v1/slug-check/{slug}": "answers invalid_parameter with suggestions for a slug that "
    "is not 2-63 lowercase letters, digits and hyphens: checking any string is the point",
    "GET /v1/usage": "from must not be after to: a rule between two parameters",
    "POST /v1/account": "signup needs a proof of work that solves the server's challenge, "
    "and the three accepted_* fields true",
    "POST /v1/confirm": _SECRET,
    "POST /v1/mailboxes/{mailbox_id}/upgrade": _SECRET,
    "POST /v1/operator/verify-session": _SECRET,
    "POST /v1/billing/stripe-webhook": "only a body signed with Stripe's secret is accepted",
    "POST /v1/api-keys": "send and oversight scopes cannot be combined on one key (a rule "
    "between items)",
    "PATCH /v1/api-keys/{key_id}": _NUL,
    "PUT /v1/mailboxes/{mailbox_id}/emails/{email_id}/tags": _NUL,
    "POST /v1/contacts": _NUL,
    "POST /v1/domains": "the domain must be a registrable name the server does not host",
    "POST /v1/mailboxes": "the local part must be free and lowercase letters, digits, dots and "
    "hyphens; webhook URLs must pass the outgoing-URL guard",
    "PATCH /v1/mailboxes/{mailbox_id}": "a mode change is refused or gated by oversight "
    "policy (an upgrade needs the operator's code)",
    "PATCH /v1/mailboxes/{mailbox_id}/configure": "as PATCH /v1/mailboxes/{mailbox_id}",
    "PATCH /v1/mailboxes/{mailbox_id}/emails/{email_id}/schedule": "send_at must be ISO 8601 "
    "UTC ending in Z and in the future, and only a scheduled email can be edited",
    "POST /v1/mailboxes/{mailbox_id}/request-upgrade": "a target mode that is not an upgrade "
    "from the mailbox's current mode needs no code (validation_error)",
    "POST /v1/mailboxes/{mailbox_id}/send": _CONTENT,
    "POST /v1/mailboxes/{mailbox_id}/reply/{email_id}": _CONTENT,
    "POST /v1/webhooks": "the URL must be https and pass the outgoing-URL guard",
    "PUT /v1/mailboxes/{mailbox_id}/oversight-rules": "rule names must be unique, a match "
    "entry must be an address or @domain, and a change that loosens oversight needs the "
    "operator's code: rules between items and a secret",
}
DELIBERATE_KINDS = {"RejectedPositiveData"}


@pytest.fixture
def seeded(transactional_db: Any, settings: Any) -> dict[str, str]:
    """A tenant with an email, the ids the fuzzer puts in paths, and its keys."""
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
    _, admin = api_key_create(account=tenant.account, name="fuzz", scopes=["admin", "send"])
    _, read = api_key_create(account=tenant.account, name="fuzz-read", scopes=["read"])
    return {"admin": admin, "read": read, "mailbox": tenant.mailbox.id, "email": email.id}


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


def _operations(schema: Any) -> list[Any]:
    """Every operation, the DELETEs last: deleting the mailbox (or the account) first would
    leave the rest of the run answering not_found."""
    operations = [result.ok() for result in schema.get_all_operations()]
    operations = [op for op in operations if not EXTERNAL.match(op.path)]
    return sorted(
        operations, key=lambda op: (op.method.upper() == "DELETE", op.path == "/v1/account")
    )


def _describe(failure: Failure, response: Any) -> str:
    return f"{type(failure).__name__} ({response.status_code}): {failure.title}"


def _deliberate(label: str, failure: str) -> bool:
    return label in DELIBERATE and failure.split(" ", 1)[0] in DELIBERATE_KINDS


def _run(operation: Any, headers: dict[str, str], seeded: dict[str, str], found: set[str]) -> None:
    load_all_checks()
    checks: list[Callable[..., Any]] = list(CHECKS.get_all())  # type: ignore[arg-type]

    @given(case=operation.as_strategy())
    @hypothesis_settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def examples(case: Any) -> None:
        _real_ids(case, seeded)
        response = case.call(headers=headers)
        try:
            case.validate_response(
                response, checks=checks, additional_checks=[error_envelope], headers=headers
            )
        except FailureGroup as group:
            found.update(_describe(failure, response) for failure in group.exceptions)
        except Failure as failure:
            found.add(_describe(failure, response))

    examples()


@pytest.mark.parametrize("key", ["admin", "read", "none"])
def test_api_conforms_to_its_schema(key: str, seeded: dict[str, str], live_server: Any) -> None:
    schema = schemathesis.openapi.from_url(
        f"{live_server.url}/v1/openapi.json",
        config=CONFIG,
        headers={"Accept": "application/vnd.oai.openapi+json"},
    )
    headers = {"Authorization": f"Bearer {seeded[key]}"} if key != "none" else {}
    unexpected: dict[str, list[str]] = {}
    for operation in _operations(schema):
        found: set[str] = set()
        _run(operation, headers, seeded, found)
        surprises = sorted(f for f in found if not _deliberate(operation.label, f))
        if surprises:
            unexpected[operation.label] = surprises
    assert unexpected == {}
