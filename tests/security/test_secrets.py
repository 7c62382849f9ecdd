"""Secrets stay secret: never in logs, and shown once (or only where the reference says).

Every log record of a whole signup → activation → key → webhook → send journey is
captured at DEBUG and searched for the raw values: API keys (``mm_live_``), webhook
signing secrets (``whsec_``) and activation codes.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any

import pytest
from django.core import mail
from rest_framework.test import APIClient

from accounts.models import ApiKey
from tests.conftest import Tenant, assert_error, client_for

pytestmark = pytest.mark.django_db

_CODE = re.compile(r"\b[A-Z0-9]{3}-[A-Z0-9]{3}-[A-Z0-9]{3}\b")


def _solve(challenge: dict[str, Any]) -> dict[str, Any]:
    for number in range(challenge["maxnumber"] + 1):
        digest = hashlib.sha256(f"{challenge['salt']}{number}".encode()).hexdigest()
        if digest == challenge["challenge"]:
            return {
                **{k: challenge[k] for k in ("algorithm", "challenge", "salt", "signature")},
                "number": number,
            }
    raise AssertionError("challenge has no solution")


def _logged_text(caplog: pytest.LogCaptureFixture) -> str:
    parts = []
    for record in caplog.records:
        parts.append(record.getMessage())
        parts.append(repr(record.args))
        parts.append(record.exc_text or "")
        parts.append(repr(getattr(record, "request", "")))
        parts.append(repr({k: v for k, v in vars(record).items() if k not in ("msg", "args")}))
    return "\n".join(parts) + caplog.text


def _signup_and_activate(client: APIClient, settings: Any, on_commit: Any) -> tuple[str, str]:
    """The public onboarding flow; returns (activation code, raw admin key)."""
    settings.SIGNUP_POW_MAX_NUMBER = 20
    challenge = client.post("/v1/account/challenge", {}, format="json").json()
    with on_commit(execute=True):  # the code is emailed once the signup commits
        response = client.post(
            "/v1/account",
            {
                "operator_name": "Initech Ops",
                "oversight_email": "ops@initech.example",
                "slug": "initech",
                "accepted_tos": True,
                "accepted_operator_agreement": True,
                "accepted_anti_spam_policy": True,
                "email_use_type": "transactional",
                "pow_solution": _solve(challenge),
            },
            format="json",
        )
    assert response.status_code == 200, response.content
    codes = [c for message in mail.outbox for c in _CODE.findall(message.body)]
    assert codes, [message.body for message in mail.outbox]
    code = codes[-1]
    confirmed = client.post("/v1/confirm", {"code": code}, format="json")
    assert confirmed.status_code == 200, confirmed.content
    return code, confirmed.json()["api_key"]


def test_no_secret_reaches_the_logs(
    settings: Any,
    caplog: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks: Any,
) -> None:
    caplog.set_level(logging.DEBUG)
    on_commit = django_capture_on_commit_callbacks
    code, raw_admin = _signup_and_activate(APIClient(), settings, on_commit)
    admin = client_for(raw_admin)

    approval_codes: list[str] = []

    def approved(path: str, body: dict[str, Any]) -> Any:
        """A fresh account wants the operator's code for admin actions done with a key."""
        with on_commit(execute=True):
            response = admin.post(path, body, format="json")
        if response.status_code == 202:
            approval_codes.append(_CODE.findall(mail.outbox[-1].body)[-1])
            response = admin.post(
                path, {**body, "approval_code": approval_codes[-1]}, format="json"
            )
        return response

    created = approved("/v1/api-keys", {"name": "sender", "scopes": ["send", "read"]})
    assert created.status_code == 201, created.content
    raw_sender = created.json()["api_key"]

    hook = approved(
        "/v1/webhooks",
        {"url": "https://hooks.initech.example/mm", "events": ["message.received"]},
    )
    assert hook.status_code == 201, hook.content
    signing_secret = hook.json()["signing_secret"]
    assert signing_secret.startswith("whsec_")

    mailbox_id = admin.get("/v1/mailboxes").json()["mailboxes"][0]["id"]
    with on_commit(execute=True):  # the outbound pipeline runs (in-process) on commit
        sent = client_for(raw_sender).post(
            f"/v1/mailboxes/{mailbox_id}/send",
            {"to": ["peter@example.com"], "subject": "TPS", "markdown": "New cover sheets."},
            format="json",
        )
    assert sent.status_code in (202, 403), sent.content  # gated or not, it was handled

    # Failed attempts log too; the key a client presented must not appear either.
    wrong = raw_sender[:-4] + "abcd"
    assert_error(client_for(wrong).get("/v1/account"), "invalid_api_key")

    logged = _logged_text(caplog)
    assert caplog.records, "nothing was logged: the capture is not working"
    secrets = [raw_admin, raw_sender, wrong, signing_secret, code, code.replace("-", "")]
    for secret in secrets + approval_codes:
        assert secret not in logged, f"secret {secret[:12]}… found in the logs"
    assert "mm_live_" not in logged or all(
        len(match) <= 16 for match in re.findall(r"mm_live_[A-Za-z0-9]+", logged)
    ), "something longer than a key's public prefix was logged"
    assert not re.search(r"whsec_[A-Za-z0-9]{8,}", logged)


def test_api_keys_are_shown_only_at_creation(owner: Tenant, api: Any) -> None:
    admin = api("admin")
    created = admin.post("/v1/api-keys", {"name": "ci", "scopes": ["read"]}, format="json")
    assert created.status_code == 201, created.content
    raw = created.json()["api_key"]
    assert raw.startswith("mm_live_")
    key_hash = ApiKey.objects.get(pk=created.json()["id"]).key_hash

    for path in ("/v1/api-keys", "/v1/audit-log", "/v1/export", "/v1/account"):
        response = admin.get(path)
        assert response.status_code == 200, (path, response.content[:200])
        body = response.content.decode()
        assert raw not in body, path
        assert key_hash not in body, path
    listed = admin.get("/v1/api-keys").json()["api_keys"]
    assert listed
    for item in listed:
        assert "api_key" not in item
        assert len(item["prefix"]) < len(raw)


def test_webhook_secret_only_on_create_and_detail(owner: Tenant, api: Any) -> None:
    admin = api("admin")
    created = admin.post(
        "/v1/webhooks",
        {"url": "https://hooks.acme.example/mm", "events": ["message.received"]},
        format="json",
    )
    assert created.status_code == 201, created.content
    secret = created.json()["signing_secret"]
    assert secret.startswith("whsec_")
    hook_id = created.json()["id"]

    listing = admin.get("/v1/webhooks")
    assert listing.status_code == 200
    assert secret not in listing.content.decode()
    assert all("signing_secret" not in item for item in listing.json()["subscriptions"])
    # The reference: GET /v1/webhooks/{id} "Includes signing secret".
    detail = admin.get(f"/v1/webhooks/{hook_id}")
    assert detail.status_code == 200
    assert detail.json()["signing_secret"] == secret
    for path in ("/v1/webhook-deliveries", "/v1/audit-log", "/v1/export"):
        response = admin.get(path)
        assert response.status_code == 200, (path, response.content[:200])
        assert secret not in response.content.decode(), path
