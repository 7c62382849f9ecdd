"""Webhook subscription endpoints: validation, the SSRF guard at creation, tenancy, limits,
the approval gate, rotation, listing."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail

from accounts.models import Account
from mailboxes.models import WebhookDelivery, WebhookSubscription
from tests.conftest import assert_error, client_for, key_for

URL = "https://hooks.example.com/multimail"


@pytest.fixture(autouse=True)
def _dns(fake_hosts: dict[str, list[str]]) -> dict[str, list[str]]:
    return fake_hosts


def create(client: Any, **body: Any) -> Any:
    payload = {"url": URL, "events": ["message.received"], **body}
    return client.post("/v1/webhooks", payload, format="json")


def test_create_returns_secret_detail_shows_it_list_does_not(api: Any, owner: Any) -> None:
    client = api("admin")
    response = create(client, events=["message.received", "oversight.pending"])
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["signing_secret"].startswith("whsec_")
    assert body["url"] == URL
    assert body["events"] == ["message.received", "oversight.pending"]
    assert body["mailbox_id"] is None
    assert body["is_active"] is True

    detail = client.get(f"/v1/webhooks/{body['id']}").json()
    assert detail["signing_secret"] == body["signing_secret"]

    listed = client.get("/v1/webhooks").json()
    assert listed["cursor"] is None
    assert [item["id"] for item in listed["subscriptions"]] == [body["id"]]
    assert "signing_secret" not in listed["subscriptions"][0]


def test_mailbox_scoped_subscription(api: Any, owner: Any) -> None:
    response = create(api("admin"), mailbox_id=owner.mailbox.pk)
    assert response.status_code == 201
    assert response.json()["mailbox_id"] == owner.mailbox.pk


def test_other_tenants_mailbox_is_not_found(api: Any, other: Any) -> None:
    assert_error(create(api("admin"), mailbox_id=other.mailbox.pk), "not_found", resource="mailbox")


def test_missing_url_and_events(api: Any) -> None:
    client = api("admin")
    response = client.post("/v1/webhooks", {"events": ["message.sent"]}, format="json")
    assert_error(response, "missing_parameter", param="url")
    response = client.post("/v1/webhooks", {"url": URL}, format="json")
    assert_error(response, "missing_parameter", param="events")


def test_unknown_event(api: Any) -> None:
    assert_error(
        create(api("admin"), events=["message.exploded"]), "invalid_parameter", param="events"
    )


def test_plain_http_refused(api: Any) -> None:
    response = create(api("admin"), url="http://hooks.example.com/x")
    assert_error(response, "invalid_parameter", param="url")


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.5.4",
        "172.31.255.1",
        "192.168.1.10",
        "169.254.169.254",
        "0.0.0.0",
        "224.0.0.1",
        "100.64.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
    ],
)
def test_non_public_resolution_refused(
    api: Any, fake_hosts: dict[str, list[str]], address: str
) -> None:
    fake_hosts["inside.example.com"] = [address]
    response = create(api("admin"), url="https://inside.example.com/hook")
    assert_error(response, "invalid_parameter", param="url")


def test_one_private_answer_among_public_ones_is_enough(
    api: Any, fake_hosts: dict[str, list[str]]
) -> None:
    fake_hosts["mixed.example.com"] = ["93.184.216.34", "10.0.0.5"]
    response = create(api("admin"), url="https://mixed.example.com/hook")
    assert_error(response, "invalid_parameter", param="url")


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "169.254.169.254", "[fe80::1]"])
def test_ip_literal_urls_refused(api: Any, host: str) -> None:
    assert_error(create(api("admin"), url=f"https://{host}/hook"), "invalid_parameter", param="url")


def test_unresolvable_host_refused(api: Any) -> None:
    response = create(api("admin"), url="https://nowhere.invalid/hook")
    assert_error(response, "invalid_parameter", param="url")


def test_allow_private_setting_relaxes_guard(api: Any, settings: Any) -> None:
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    assert create(api("admin"), url="http://127.0.0.1:9/hook").status_code == 201


def test_read_key_cannot_manage_webhooks(api: Any) -> None:
    assert_error(
        api("read").get("/v1/webhooks"), "insufficient_permissions", required_scope="admin"
    )


def test_plan_limit(api: Any, owner: Any) -> None:
    client = api("admin")
    assert create(client).status_code == 201
    assert create(client).status_code == 201
    assert_error(create(client), "limit_exceeded", limit=2, plan="starter")


def test_other_tenant_webhook_is_not_found(api: Any, other: Any) -> None:
    theirs = WebhookSubscription.objects.create(
        account=other.account, url=URL, events=["message.sent"], signing_secret="whsec_x"
    )
    client = api("admin")
    assert_error(client.get(f"/v1/webhooks/{theirs.pk}"), "not_found", resource="webhook")
    assert_error(client.delete(f"/v1/webhooks/{theirs.pk}"), "not_found", resource="webhook")
    assert_error(
        client.post(f"/v1/webhooks/{theirs.pk}/rotate-secret"), "not_found", resource="webhook"
    )
    assert_error(client.post(f"/v1/webhooks/{theirs.pk}/test"), "not_found", resource="webhook")
    assert WebhookSubscription.objects.filter(pk=theirs.pk).exists()


def test_delete(api: Any) -> None:
    client = api("admin")
    created = create(client).json()
    assert client.delete(f"/v1/webhooks/{created['id']}").json() == {"status": "deleted"}
    assert_error(client.get(f"/v1/webhooks/{created['id']}"), "not_found", resource="webhook")


def test_rotate_secret_keeps_old_one_for_grace_period(api: Any) -> None:
    client = api("admin")
    created = create(client).json()
    rotated = client.post(f"/v1/webhooks/{created['id']}/rotate-secret").json()
    assert rotated["signing_secret"].startswith("whsec_")
    assert rotated["signing_secret"] != created["signing_secret"]
    assert rotated["previous_secret_expires_at"] is not None
    row = WebhookSubscription.objects.get(pk=created["id"])
    assert row.previous_secret == created["signing_secret"]


def test_agent_key_needs_operator_approval(
    owner: Any, django_capture_on_commit_callbacks: Any
) -> None:
    Account.objects.filter(pk=owner.account.pk).update(require_operator_approval=True)
    _, raw = key_for(owner.account, "admin")
    client = client_for(raw)
    with django_capture_on_commit_callbacks(execute=True):
        first = create(client)
    assert first.status_code == 202, first.content
    assert first.json()["status"] == "pending_approval"
    assert not WebhookSubscription.objects.exists()
    code = re.search(r"\b[A-Z0-9]{3}-[A-Z0-9]{3}-[A-Z0-9]{3}\b", mail.outbox[-1].body)
    assert code is not None
    wrong = create(client, approval_code="AAA-AAA-AAA")
    assert_error(wrong, "validation_error", param="approval_code")
    second = create(client, approval_code=code.group(0))
    assert second.status_code == 201, second.content
    assert WebhookSubscription.objects.count() == 1


def test_console_approval_creates_the_webhook(owner: Any) -> None:
    from accounts.actors import Actor
    from accounts.models import AdminActionRequest
    from oversight.admin_actions import admin_action_approve

    Account.objects.filter(pk=owner.account.pk).update(require_operator_approval=True)
    _, raw = key_for(owner.account, "admin")
    assert create(client_for(raw)).status_code == 202
    pending = AdminActionRequest.objects.get()
    owner.account.refresh_from_db()
    admin_action_approve(actor=Actor.for_operator(owner.operator), approval_id=pending.pk)
    subscription = WebhookSubscription.objects.get()
    assert subscription.url == URL


def test_list_query_count_does_not_grow(
    api: Any, owner: Any, django_assert_num_queries: Any
) -> None:
    client = api("admin")
    client.get("/v1/webhooks")  # warm the key lookup path the same way for both counts
    WebhookSubscription.objects.bulk_create(
        WebhookSubscription(
            account=owner.account, url=URL, events=["message.sent"], signing_secret="s"
        )
        for _ in range(3)
    )
    with django_assert_num_queries(_queries(client, "/v1/webhooks?limit=1")):
        body = client.get("/v1/webhooks?limit=3").json()
    assert len(body["subscriptions"]) == 3


def test_deliveries_list_paginates_and_query_count(
    api: Any, owner: Any, django_assert_num_queries: Any
) -> None:
    WebhookDelivery.objects.bulk_create(
        WebhookDelivery(account=owner.account, event_type="message.sent", url=URL, payload={})
        for _ in range(5)
    )
    client = api("admin")
    first = client.get("/v1/webhook-deliveries?limit=2").json()
    assert len(first["deliveries"]) == 2
    item = first["deliveries"][0]
    assert set(item) >= {
        "id",
        "event_type",
        "url",
        "status",
        "attempts",
        "response_status",
        "created_at",
        "last_attempt_at",
    }
    assert item["status"] == "pending"
    second = client.get(f"/v1/webhook-deliveries?limit=2&cursor={first['cursor']}").json()
    assert {d["id"] for d in first["deliveries"]}.isdisjoint(d["id"] for d in second["deliveries"])
    with django_assert_num_queries(_queries(client, "/v1/webhook-deliveries?limit=1")):
        assert len(client.get("/v1/webhook-deliveries?limit=5").json()["deliveries"]) == 5
    assert_error(
        client.get("/v1/webhook-deliveries?cursor=bogus"), "invalid_parameter", param="cursor"
    )


def test_deliveries_are_tenant_scoped(api: Any, other: Any) -> None:
    WebhookDelivery.objects.create(
        account=other.account, event_type="message.sent", url=URL, payload={}
    )
    assert api("admin").get("/v1/webhook-deliveries").json()["deliveries"] == []


def _queries(client: Any, path: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    return len(captured)


def test_full_plan_is_reported_before_asking_the_operator(owner: Any) -> None:
    WebhookSubscription.objects.bulk_create(
        WebhookSubscription(account=owner.account, url=URL, events=["message.sent"])
        for _ in range(2)
    )
    Account.objects.filter(pk=owner.account.pk).update(require_operator_approval=True)
    _, raw = key_for(owner.account, "admin")
    assert_error(create(client_for(raw)), "limit_exceeded", limit=2, plan="starter")
    assert not mail.outbox
