"""Deep or huge JSON never reaches the parser's recursion: it answers the envelope.

Every write operation the API publishes gets a body nested 3000 levels deep, with an admin
key and without one; generated bodies around the depth bound show exactly where it lies.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from mailboxes.models import Direction, Email, EmailStatus
from multimail.errors import REGISTRY
from multimail.ids import new_id
from multimail.json_limits import MAX_CONTAINERS, MAX_DEPTH
from tests.conftest import Tenant, assert_error, client_for, key_for

pytestmark = pytest.mark.django_db

WRITE_METHODS = ("post", "put", "patch", "delete")


def nested(depth: int, kinds: list[bool] | None = None) -> bytes:
    """A JSON value ``depth`` containers deep; ``kinds[i]`` picks array (True) or object."""
    kinds = kinds or [i % 2 == 0 for i in range(depth)]
    opening = "".join("[" if kind else '{"k":' for kind in kinds[:depth])
    closing = "".join("]" if kind else "}" for kind in reversed(kinds[:depth]))
    return f"{opening}0{closing}".encode()


@pytest.fixture
def seeded(owner: Tenant, settings: Any) -> dict[str, str]:
    settings.API_RATE_LIMIT_READ_PER_MINUTE = 100_000
    settings.API_RATE_LIMIT_SEND_PER_MINUTE = 100_000
    # Provider webhooks check their credentials and then read the body.
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": "user:secret"}
    settings.STRIPE_WEBHOOK_SECRET = "whsec_test"
    email = Email.objects.create(
        account=owner.account,
        mailbox=owner.mailbox,
        direction=Direction.INBOUND,
        status=EmailStatus.UNREAD,
        from_address="sender@example.com",
        to=[owner.mailbox.address],
        subject="Hello",
        markdown="Hi",
        thread_id=new_id(),
    )
    _, raw = key_for(owner.account, "admin", "send")
    return {"key": raw, "mailbox": owner.mailbox.id, "email": email.id}


def write_operations() -> list[tuple[str, str]]:
    schema = APIClient().get("/v1/openapi.json").json()
    return [
        (method, path)
        for path, item in schema["paths"].items()
        for method in WRITE_METHODS
        if method in item
    ]


def concrete(path: str, seeded: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1).lower()
        if "mailbox" in name:
            return seeded["mailbox"]
        if "email" in name and "address" not in name:
            return seeded["email"]
        return "x"

    return re.sub(r"\{([^}]+)\}", value, path)


@pytest.mark.parametrize("with_key", [True, False], ids=["admin-key", "no-key"])
def test_every_write_operation_answers_a_deep_body_with_the_envelope(
    seeded: dict[str, str], with_key: bool
) -> None:
    operations = write_operations()
    assert len(operations) > 20
    client = client_for(seeded["key"]) if with_key else APIClient()
    # The provider webhooks authenticate with HTTP Basic, so the body is read.
    headers = {"HTTP_STRIPE_SIGNATURE": "t=1,v1=0"}
    deep = nested(3000)
    body_rejected = 0
    for method, path in operations:
        url = concrete(path, seeded)
        basic = {"HTTP_AUTHORIZATION": "Basic dXNlcjpzZWNyZXQ="} if "postmark" in url else {}
        response = client.generic(
            method.upper(), url, deep, content_type="application/json", **headers, **basic
        )
        assert response.status_code < 500, (method, path, response.content[:300])
        if response.status_code >= 400:
            error = response.json()["error"]
            assert REGISTRY[error["code"]].status == response.status_code, (method, path, error)
            if response.status_code == 400 and error.get("param") == "body":
                assert error["code"] == "invalid_parameter", (method, path, error)
                body_rejected += 1
    # Every public write reads the body; with a key nearly every write does.
    assert body_rejected >= (20 if with_key else 3), body_rejected


@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(kinds=st.lists(st.booleans(), min_size=2, max_size=3 * MAX_DEPTH))
def test_the_depth_bound_is_exact(seeded: dict[str, str], kinds: list[bool]) -> None:
    """A body within the bound is parsed (the send then names the bad field); one level
    more is refused as a whole, before any field is looked at."""
    depth = len(kinds)
    # The send body itself is one object: the subject value adds the other levels.
    value = nested(depth - 1, kinds)
    body = b'{"to": ["someone@example.com"], "markdown": "Hi", "subject": ' + value + b"}"
    response = client_for(seeded["key"]).post(
        f"/v1/mailboxes/{seeded['mailbox']}/send", body, content_type="application/json"
    )
    if depth > MAX_DEPTH:
        assert_error(response, "invalid_parameter", param="body")
    else:
        assert_error(response, "invalid_parameter", param="subject")


@hypothesis_settings(max_examples=20, deadline=None)
@given(text=st.text(alphabet='[]{}"\\,:', max_size=60))
def test_brackets_inside_strings_do_not_count(text: str) -> None:
    from multimail.json_limits import json_loads_bounded

    assert json_loads_bounded(json.dumps({"k": text})) == {"k": text}


def test_too_many_containers_is_refused(seeded: dict[str, str]) -> None:
    body = b"[" + b",".join([b"[]"] * (MAX_CONTAINERS + 1)) + b"]"
    response = APIClient().post("/v1/account", body, content_type="application/json")
    assert_error(response, "invalid_parameter", param="body")


def test_a_body_over_the_limit_is_413(seeded: dict[str, str], settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"subject": "x" * 2000}).encode()
    response = client_for(seeded["key"]).post(
        f"/v1/mailboxes/{seeded['mailbox']}/send", body, content_type="application/json"
    )
    assert_error(response, "payload_too_large", limit_bytes=1000)
