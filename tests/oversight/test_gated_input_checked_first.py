"""A gated admin action checks its whole input before it asks the operator.

An agent's admin key on an account with approvals on: whatever it sends that cannot succeed
is answered at once with its catalog error, and no approval is recorded and no code is
emailed. Every gated action is fed generated invalid input over HTTP. A valid request of
each action still asks (202), so the refusals are not the gate being switched off.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.core import mail
from django.test import TestCase
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from accounts.models import (
    Account,
    AdminActionRequest,
    ApiKey,
    CodePurpose,
    OneTimeCode,
    Scope,
)
from accounts.plans import limits_for
from billing.models import Subscription
from mailboxes.models import Mailbox, OversightMode, WebhookEvent, WebhookSubscription
from mailboxes.services import netguard
from multimail.errors import REGISTRY
from oversight.admin_actions import ACTIONS
from tests.conftest import Tenant, client_for, key_for, make_tenant

pytestmark = pytest.mark.django_db

PUBLIC_IP = "93.184.216.34"
# Names the fake DNS answers with a non-public address (alone, or among public ones).
INTERNAL_NAMES = {"internal.example.com": ["10.0.0.5"], "mixed.example.com": [PUBLIC_IP, "::1"]}
NON_PUBLIC_NETWORKS = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
    "::ffff:127.0.0.0/104",
]
LOCAL_PART = r"[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?"

checked_settings = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _address_in(network: str) -> st.SearchStrategy[str]:
    net = ipaddress.ip_network(network)
    return st.integers(0, net.num_addresses - 1).map(lambda index: str(net[index]))


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


non_public_address = st.one_of(*[_address_in(network) for network in NON_PUBLIC_NETWORKS])
unsafe_url = st.one_of(
    non_public_address.map(lambda address: f"https://{_host(address)}/hook"),
    st.sampled_from(sorted(INTERNAL_NAMES)).map(lambda name: f"https://{name}/hook"),
    st.sampled_from(["http", "ftp"]).map(lambda scheme: f"{scheme}://hooks.example.com/hook"),
    st.just("https://user:secret@hooks.example.com/hook"),
)
# Never an address: no "@" at all, or a broken form.
not_an_email = st.one_of(
    st.text(max_size=40).filter(lambda text: "@" not in text and text.strip()),
    st.sampled_from(["a@b", "@example.org", "a@@example.org", "a@example..org", "a b@example.org"]),
)
# Text fields take numbers as text, and booleans take 0/1: these are neither.
not_text = st.one_of(
    st.booleans(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
not_a_boolean = st.one_of(
    st.integers().filter(lambda number: number not in (0, 1)),
    st.lists(st.integers(), min_size=1, max_size=2),
    st.text(min_size=6, max_size=12),
)
too_long_name = st.text(alphabet=st.characters(categories=["L", "N"]), min_size=201, max_size=210)
unknown_scope = st.text(min_size=1, max_size=20).filter(lambda text: text not in Scope.values)
unknown_id = st.from_regex(r"[0-9A-Z]{26}", fullmatch=True)


@dataclass
class Gate:
    tenant: Tenant
    client: APIClient
    reader: ApiKey

    @property
    def mailbox_url(self) -> str:
        return f"/v1/mailboxes/{self.tenant.mailbox.pk}"

    def refused(self, call: Callable[[APIClient], Any]) -> dict[str, Any]:
        """Run the call; it must answer a catalog error and leave the operator alone."""
        with TestCase.captureOnCommitCallbacks(execute=True):
            response = call(self.client)
        assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
        error = response.json()["error"]
        assert REGISTRY[error["code"]].status == response.status_code, error
        assert not AdminActionRequest.objects.exists()
        assert not OneTimeCode.objects.filter(purpose=CodePurpose.ADMIN_ACTION).exists()
        assert mail.outbox == []
        return error


@pytest.fixture
def gate(db: Any, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Gate:
    settings.API_RATE_LIMIT_READ_PER_MINUTE = 100_000
    settings.API_RATE_LIMIT_SEND_PER_MINUTE = 100_000

    def resolve(host: str, port: int) -> list[str]:
        return list(INTERNAL_NAMES.get(host, [PUBLIC_IP]))

    monkeypatch.setattr(netguard, "resolve_addresses", resolve)
    # The lowest gated mode, so any other mode asked for is an upgrade this API refuses.
    tenant = make_tenant("gate", mode=OversightMode.GATED_SEND)
    tenant.account.require_operator_approval = True
    tenant.account.save(update_fields=["require_operator_approval"])
    _, raw = key_for(tenant.account, "admin")
    reader, _ = key_for(tenant.account, "read")
    return Gate(tenant=tenant, client=client_for(raw), reader=reader)


# --- A valid request of every gated action asks the operator ----------------------------


def _subscribed(gate: Gate) -> None:
    Subscription.objects.create(
        account=gate.tenant.account, stripe_subscription_id="sub_x", plan="pro", status="active"
    )


def _stopped(gate: Gate) -> None:
    Account.objects.filter(pk=gate.tenant.account.pk).update(sending_stopped=True)


VALID: dict[str, tuple[Callable[[Gate], None] | None, Callable[[Gate, APIClient], Any]]] = {
    "account.update": (None, lambda g, c: c.patch("/v1/account", {"name": "N"}, format="json")),
    "account.delete": (None, lambda g, c: c.delete("/v1/account")),
    "api_key.create": (None, lambda g, c: c.post("/v1/api-keys", {"name": "k"}, format="json")),
    "api_key.update": (
        None,
        lambda g, c: c.patch(
            f"/v1/api-keys/{g.reader.pk}", {"scopes": ["read", "oversight"]}, format="json"
        ),
    ),
    "api_key.revoke": (None, lambda g, c: c.delete(f"/v1/api-keys/{g.reader.pk}")),
    "mailbox.create": (
        None,
        lambda g, c: c.post(
            "/v1/mailboxes",
            {"address_local": "new", "webhook_url": "https://hooks.example.com/in"},
            format="json",
        ),
    ),
    "mailbox.update": (
        None,
        lambda g, c: c.patch(
            g.mailbox_url,
            {"auto_bcc": "copy@example.org", "webhook_url": "https://hooks.example.com/mb"},
            format="json",
        ),
    ),
    "webhook.create": (
        None,
        lambda g, c: c.post(
            "/v1/webhooks",
            {"url": "https://hooks.example.com/x", "events": ["message.received"]},
            format="json",
        ),
    ),
    "billing.cancel": (_subscribed, lambda g, c: c.post("/v1/billing/cancel", {}, format="json")),
    "mailbox.oversight_rules": (
        None,
        lambda g, c: c.put(
            f"{g.mailbox_url}/oversight-rules",
            {"rules": [{"name": "team", "direction": "outbound", "action": "approve"}]},
            format="json",
        ),
    ),
    "sending.resume": (_stopped, lambda g, c: c.post("/v1/oversight/resume", {}, format="json")),
}


def test_every_gated_action_is_covered_here() -> None:
    assert set(VALID) == set(ACTIONS)


@pytest.mark.parametrize("action", sorted(VALID))
def test_a_valid_request_asks_the_operator(gate: Gate, action: str) -> None:
    prepare, call = VALID[action]
    if prepare is not None:
        prepare(gate)
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = call(gate, gate.client)
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "pending_approval"
    assert AdminActionRequest.objects.get().action == action
    [notice] = mail.outbox
    assert notice.to == [gate.tenant.account.oversight_email]


# --- Whatever cannot succeed is refused without asking ----------------------------------


@checked_settings
@given(
    body=st.one_of(
        st.fixed_dictionaries({"address_local": st.text(max_size=30)}).filter(
            lambda body: (
                not re.fullmatch(LOCAL_PART, body["address_local"])
                and "@" not in body["address_local"]
            )
        ),
        st.fixed_dictionaries(
            {
                "address_local": st.from_regex(LOCAL_PART, fullmatch=True).map(
                    lambda local: f"{local}@unverified.example"
                )
            }
        ),
        st.fixed_dictionaries({"address_local": st.just("agent")}),  # taken
        st.fixed_dictionaries({"address_local": st.just("new"), "webhook_url": unsafe_url}),
        st.fixed_dictionaries({"address_local": not_text}),
        st.fixed_dictionaries({"address_local": st.just("new"), "ai_disclosure": not_a_boolean}),
    )
)
def test_mailbox_create(gate: Gate, body: dict[str, Any]) -> None:
    gate.refused(lambda client: client.post("/v1/mailboxes", body, format="json"))


@checked_settings
@given(local=st.from_regex(LOCAL_PART, fullmatch=True).filter(lambda local: local != "agent"))
def test_mailbox_create_beyond_the_plan(gate: Gate, local: str) -> None:
    for index in range(limits_for(gate.tenant.account.plan).max_mailboxes - 1):
        Mailbox.objects.get_or_create(
            account=gate.tenant.account, address=f"full{index}@gate.multimail.localhost"
        )
    error = gate.refused(
        lambda client: client.post("/v1/mailboxes", {"address_local": local}, format="json")
    )
    assert error["code"] in {"limit_exceeded", "address_taken"}


routing_change = st.sampled_from(
    [{"auto_cc": "copy@example.org"}, {"auto_bcc": "archive@example.org"}]
)
invalid_mailbox_setting = st.one_of(
    st.sampled_from(
        [OversightMode.MONITORED, OversightMode.AUTONOMOUS, "unknown", "GATED_SEND"]
    ).map(lambda mode: {"oversight_mode": mode}),
    not_an_email.map(lambda text: {"auto_cc": text}),
    too_long_name.map(lambda text: {"display_name": text}),
    not_a_boolean.map(lambda value: {"ai_disclosure": value}),
)


@checked_settings
@given(
    change=routing_change,
    invalid=st.one_of(
        invalid_mailbox_setting,
        unsafe_url.map(lambda url: {"webhook_url": url}),
        unsafe_url.map(lambda url: {"oversight_webhook_url": url}),
    ),
)
def test_mailbox_update(gate: Gate, change: dict[str, str], invalid: dict[str, Any]) -> None:
    gate.refused(lambda client: client.patch(gate.mailbox_url, change | invalid, format="json"))


@checked_settings
@given(
    change=routing_change,
    invalid=st.one_of(
        invalid_mailbox_setting,
        st.text(max_size=20).map(lambda text: {"default_gate_timing": text}),
    ),
)
def test_mailbox_configure(gate: Gate, change: dict[str, str], invalid: dict[str, Any]) -> None:
    gate.refused(
        lambda client: client.patch(
            f"{gate.mailbox_url}/configure", change | invalid, format="json"
        )
    )


@checked_settings
@given(mailbox_id=unknown_id, change=routing_change)
def test_mailbox_update_of_an_unknown_mailbox(
    gate: Gate, mailbox_id: str, change: dict[str, str]
) -> None:
    error = gate.refused(
        lambda client: client.patch(f"/v1/mailboxes/{mailbox_id}", change, format="json")
    )
    assert error["code"] == "not_found"


@checked_settings
@given(
    body=st.one_of(
        st.fixed_dictionaries({"url": unsafe_url, "events": st.just(["message.received"])}),
        st.fixed_dictionaries(
            {
                "url": st.just("https://hooks.example.com/x"),
                "events": st.lists(
                    st.text(max_size=20).filter(lambda text: text not in WebhookEvent.values),
                    min_size=1,
                    max_size=3,
                ),
            }
        ),
        st.fixed_dictionaries(
            {
                "url": st.just("https://hooks.example.com/x"),
                "events": st.just(["message.received"]),
                "mailbox_id": unknown_id,
            }
        ),
        st.fixed_dictionaries(
            {"url": st.just("https://hooks.example.com/x"), "events": st.just([])}
        ),
    )
)
def test_webhook_create(gate: Gate, body: dict[str, Any]) -> None:
    gate.refused(lambda client: client.post("/v1/webhooks", body, format="json"))


@checked_settings
@given(events=st.lists(st.sampled_from(WebhookEvent.values), min_size=1, max_size=3))
def test_webhook_create_beyond_the_plan(gate: Gate, events: list[str]) -> None:
    for index in range(limits_for(gate.tenant.account.plan).max_webhooks):
        WebhookSubscription.objects.get_or_create(
            account=gate.tenant.account,
            url=f"https://hooks.example.com/{index}",
            defaults={"events": ["message.received"], "signing_secret": "whsec_x"},
        )
    body = {"url": "https://hooks.example.com/new", "events": events}
    error = gate.refused(lambda client: client.post("/v1/webhooks", body, format="json"))
    assert error["code"] == "limit_exceeded"


scopes_that_cannot_be = st.one_of(
    st.lists(st.sampled_from(Scope.values), max_size=3).flatmap(
        lambda valid: unknown_scope.map(lambda bad: [*valid, bad])
    ),
    st.sampled_from([Scope.OVERSIGHT, Scope.OVERSIGHT_READ]).map(
        lambda oversight: [Scope.SEND, oversight]
    ),
)


@checked_settings
@given(
    body=st.one_of(
        st.fixed_dictionaries({"name": st.just("k"), "scopes": scopes_that_cannot_be}),
        st.fixed_dictionaries({"name": too_long_name}),
        st.fixed_dictionaries({"name": not_text}),
    )
)
def test_api_key_create(gate: Gate, body: dict[str, Any]) -> None:
    gate.refused(lambda client: client.post("/v1/api-keys", body, format="json"))


@checked_settings
@given(scopes=st.lists(st.sampled_from([Scope.READ, Scope.ADMIN]), min_size=1, max_size=2))
def test_api_key_create_beyond_the_plan(gate: Gate, scopes: list[str]) -> None:
    active = ApiKey.objects.filter(account=gate.tenant.account, is_active=True).count()
    for _ in range(limits_for(gate.tenant.account.plan).max_api_keys - active):
        key_for(gate.tenant.account, "read")
    body = {"name": "one more", "scopes": scopes}
    error = gate.refused(lambda client: client.post("/v1/api-keys", body, format="json"))
    assert error["code"] == "limit_exceeded"


@checked_settings
@given(scopes=scopes_that_cannot_be.map(lambda scopes: [*scopes, Scope.OVERSIGHT]))
def test_api_key_update(gate: Gate, scopes: list[str]) -> None:
    gate.refused(
        lambda client: client.patch(
            f"/v1/api-keys/{gate.reader.pk}", {"scopes": scopes}, format="json"
        )
    )


@checked_settings
@given(
    scopes=st.sampled_from([Scope.OVERSIGHT, Scope.OVERSIGHT_READ]).map(
        lambda oversight: [Scope.READ, oversight]
    ),
    name=st.one_of(st.none(), st.text(alphabet=st.characters(categories=["L"]), min_size=1)),
)
def test_api_key_update_of_a_revoked_key(gate: Gate, scopes: list[str], name: str | None) -> None:
    ApiKey.objects.filter(pk=gate.reader.pk).update(is_active=False)
    body: dict[str, Any] = {"scopes": scopes} | ({"name": name} if name else {})
    error = gate.refused(
        lambda client: client.patch(f"/v1/api-keys/{gate.reader.pk}", body, format="json")
    )
    assert error["code"] == "conflict"


@checked_settings
@given(key_id=unknown_id)
def test_api_key_update_and_revoke_of_an_unknown_key(gate: Gate, key_id: str) -> None:
    body = {"scopes": ["read", "oversight"]}
    for call in (
        lambda client: client.patch(f"/v1/api-keys/{key_id}", body, format="json"),
        lambda client: client.delete(f"/v1/api-keys/{key_id}"),
    ):
        assert gate.refused(call)["code"] == "not_found"


@checked_settings
@given(
    body=st.one_of(
        st.fixed_dictionaries({"oversight_email": not_an_email}),
        st.fixed_dictionaries({"oversight_email": not_text}),
        st.fixed_dictionaries({"name": too_long_name}),
        st.fixed_dictionaries({"require_operator_approval": not_a_boolean}),
        st.fixed_dictionaries({"physical_address": not_text}),
    )
)
def test_account_update(gate: Gate, body: dict[str, Any]) -> None:
    gate.refused(lambda client: client.patch("/v1/account", body, format="json"))


@checked_settings
@given(etag=st.from_regex(r'"[0-9a-f]{8,32}"', fullmatch=True))
def test_account_delete_with_a_stale_etag(gate: Gate, etag: str) -> None:
    error = gate.refused(lambda client: client.delete("/v1/account", HTTP_IF_MATCH=etag))
    assert error["code"] == "conflict"


@checked_settings
@given(body=st.one_of(st.just({}), st.fixed_dictionaries({"approval_code": st.text(max_size=16)})))
def test_billing_cancel_without_a_subscription(gate: Gate, body: dict[str, Any]) -> None:
    error = gate.refused(lambda client: client.post("/v1/billing/cancel", body, format="json"))
    assert error["code"] == "conflict"


approve_rule = st.fixed_dictionaries(
    {
        "name": st.just("team"),
        "direction": st.just("outbound"),
        "match": st.just({"recipients": ["@acme.example"]}),
        "action": st.just("approve"),
    }
)


@checked_settings
@given(
    rules=st.one_of(
        # A loosening list with one broken field somewhere: refused before anyone is asked.
        approve_rule.map(lambda rule: [rule, {**rule, "name": "x", "direction": "up"}]),
        approve_rule.map(lambda rule: [{**rule, "match": {"recipients": ["no-at-sign"]}}]),
        approve_rule.map(lambda rule: [rule, {**rule}]),  # a duplicate name
        st.lists(approve_rule, min_size=51, max_size=51),
        not_text.filter(lambda value: value != []),  # an empty list is valid: no rules
    )
)
def test_oversight_rules(gate: Gate, rules: Any) -> None:
    url = f"{gate.mailbox_url}/oversight-rules"
    error = gate.refused(lambda client: client.put(url, {"rules": rules}, format="json"))
    assert error["code"] in ("invalid_parameter", "validation_error")
    assert error["param"].startswith("rules")
