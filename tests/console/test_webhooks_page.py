"""The webhook pages: each delivery's request and answer over real HTTP, replay of any
delivery, the next attempt time, and readable network errors."""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Callable, Iterator

import pytest
import urllib3
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import given
from hypothesis import strategies as st

from accounts.actors import Actor
from mailboxes import enqueue
from mailboxes.models import WebhookDelivery, WebhookSubscription
from mailboxes.services import netguard, webhooks
from mailboxes.services.netguard import network_error_sentence
from mailboxes.services.webhooks import subscription_create, webhook_delivery_attempt
from tests.conftest import Tenant
from tests.console.conftest import signed_in
from tests.hooks.conftest import Receiver, start_receiver  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("allow_private", "no_immediate_delivery")


@pytest.fixture
def allow_private(settings) -> None:
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True


@pytest.fixture
def no_immediate_delivery(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Attempts run when the test says (webhook_delivery_attempt), not on commit."""
    queued: list[str] = []
    monkeypatch.setattr(enqueue, "deliver_webhook_after_commit", queued.append)
    return queued


def _hook(tenant: Tenant, url: str) -> WebhookSubscription:
    return subscription_create(
        actor=Actor.for_operator(tenant.operator), url=url, events=["message.received"]
    )


def _delivery(hook: WebhookSubscription, **fields) -> WebhookDelivery:
    values = {
        "account": hook.account,
        "subscription": hook,
        "event_type": "message.received",
        "url": hook.url,
        "payload": {"id": "evt_1", "type": "message.received", "data": {"email_id": "e1"}},
    }
    values.update(fields)
    return WebhookDelivery.objects.create(**values)


def _page(hook: WebhookSubscription, delivery: WebhookDelivery) -> str:
    return f"/console/webhooks/{hook.pk}/deliveries/{delivery.pk}"


def test_delivery_page_shows_the_request_and_the_answer(
    owner,
    console,
    start_receiver: Callable[..., Receiver],  # noqa: F811 (the fixture imported above)
):
    receiver = start_receiver(statuses=[202])
    receiver.reply_headers = {"X-Receiver": "hello"}
    receiver.reply_body = {"accepted": True}
    hook = _hook(owner, receiver.url)
    delivery = _delivery(hook)
    webhook_delivery_attempt(delivery_id=delivery.pk)
    [received] = receiver.requests
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.DELIVERED
    assert (
        delivery.request_headers["X-MultiMail-Signature"]
        == received.headers["X-MultiMail-Signature"]
    )
    assert delivery.duration_ms is not None
    body = console.get(_page(hook, delivery)).content.decode()
    assert receiver.url in body
    assert "X-MultiMail-Signature" in body
    assert received.headers["X-MultiMail-Signature"] in body
    assert "&quot;email_id&quot;: &quot;e1&quot;" in body  # the body, pretty-printed
    assert "HTTP 202" in body
    assert "X-Receiver" in body
    assert "hello" in body
    assert "&quot;accepted&quot;: true" in body
    assert f"in {delivery.duration_ms} ms" in body


def test_replay_any_delivery_even_a_successful_one(
    owner,
    console,
    no_immediate_delivery,
    start_receiver: Callable[..., Receiver],  # noqa: F811 (the fixture imported above)
):
    receiver = start_receiver()
    hook = _hook(owner, receiver.url)
    delivery = _delivery(hook)
    webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.DELIVERED
    response = console.post(f"{_page(hook, delivery)}/replay")
    replay = WebhookDelivery.objects.exclude(pk=delivery.pk).get(subscription=hook)
    # PRG: to the new delivery's page, with the feedback there.
    assert response.status_code == 302
    assert response["Location"] == _page(hook, replay)
    shown = console.get(response["Location"]).content.decode()
    assert "Replay queued" in shown
    assert delivery.pk in shown  # "Replay of"
    assert no_immediate_delivery == [replay.pk]
    assert (replay.event_id, replay.payload, replay.replay_of_id) == (
        delivery.event_id,
        delivery.payload,
        delivery.pk,
    )
    webhook_delivery_attempt(delivery_id=replay.pk)
    first, second = receiver.requests
    # The same event, a new delivery: the receiver's dedupe key differs, the event id not.
    assert first.headers["X-MultiMail-Delivery"] != second.headers["X-MultiMail-Delivery"]
    assert json.loads(first.body)["id"] == json.loads(second.body)["id"] == "evt_1"
    history = console.get(f"/console/webhooks/{hook.pk}").content.decode()
    assert "replay" in history


def test_pending_delivery_shows_its_next_attempt(
    owner,
    console,
    start_receiver: Callable[..., Receiver],  # noqa: F811 (the fixture imported above)
):
    receiver = start_receiver(statuses=[500])
    hook = _hook(owner, receiver.url)
    delivery = _delivery(hook)
    webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.PENDING
    shown = delivery.next_attempt_at.strftime("%Y-%m-%d %H:%M:%S")
    history = console.get(f"/console/webhooks/{hook.pk}").content.decode()
    assert shown in history
    assert "HTTP 500: The endpoint answered HTTP 500." in history
    detail = console.get(_page(hook, delivery)).content.decode()
    assert "Next attempt" in detail
    assert shown in detail


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on: bound once, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


def _attempted(owner: Tenant, url: str) -> WebhookDelivery:
    delivery = _delivery(_hook(owner, url))
    webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    return delivery


def test_connection_refused_reads_as_a_sentence(owner, console, closed_port):
    delivery = _attempted(owner, f"http://127.0.0.1:{closed_port}/hook")
    assert delivery.last_error == (
        "The endpoint refused the connection: nothing is listening at that address."
    )
    assert "Connection refused" in delivery.error_detail
    body = console.get(_page(delivery.subscription, delivery)).content.decode()
    assert delivery.last_error in body
    assert "Technical detail" in body
    assert "Connection refused" in body


def test_timeout_reads_as_a_sentence(owner, silent_server, monkeypatch):
    monkeypatch.setattr(webhooks, "TIMEOUT_SECONDS", 0.3)
    delivery = _attempted(owner, f"http://127.0.0.1:{silent_server}/hook")
    assert delivery.last_error == "The endpoint did not answer within 0.3 seconds."
    assert "timed out" in delivery.error_detail.lower()


def test_tls_failure_reads_as_a_sentence(owner, start_receiver: Callable[..., Receiver]):  # noqa: F811 (the fixture imported above)
    # HTTPS to a plain-HTTP server: the handshake fails.
    receiver = start_receiver()
    delivery = _attempted(owner, f"https://127.0.0.1:{receiver.port}/hook")
    assert delivery.last_error.startswith("The secure (TLS) connection failed")
    assert "SSL" in delivery.error_detail


def test_dns_failure_reads_as_a_sentence(owner, monkeypatch):
    def no_such_host(host: str, port: int) -> list[str]:
        raise netguard.UnresolvableHost(
            f"The host {host} does not resolve ([Errno -2] Name or service not known)."
        )

    hook = _hook(owner, "http://127.0.0.1:9/hook")
    WebhookSubscription.objects.filter(pk=hook.pk).update(url="http://hooks.invalid/hook")
    delivery = _delivery(hook, url="http://hooks.invalid/hook")
    monkeypatch.setattr(netguard, "resolve_addresses", no_such_host)
    webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.last_error == (
        "The endpoint's host name could not be found (the DNS lookup failed)."
    )
    assert "[Errno -2]" not in delivery.last_error
    assert "[Errno -2]" in delivery.error_detail


def test_blocked_by_the_guard_reads_as_a_sentence(owner, settings):
    hook = _hook(owner, "http://127.0.0.1:9/hook")
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    delivery = _delivery(hook, url="https://127.0.0.1/hook")
    webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.last_error.startswith("Not sent, blocked by the address guard:")
    assert "loopback" in delivery.last_error


# The sentences the mapper may give for anything but the guard (whose sentence quotes it).
SENTENCES = {
    "The endpoint's host name could not be found (the DNS lookup failed).",
    "The secure (TLS) connection failed: the endpoint's certificate could not be verified, "
    "or it does not speak HTTPS.",
    "The endpoint refused the connection: nothing is listening at that address.",
    "The endpoint did not answer within 10 seconds.",
    "The endpoint could not be reached over the network.",
    "The endpoint closed the connection before answering.",
    "The request could not be sent because of a network error.",
}


def _errors(message: str) -> list[BaseException]:
    return [
        OSError(message),
        ConnectionRefusedError(111, message),
        ConnectionResetError(104, message),
        TimeoutError(message),
        socket.gaierror(-2, message),
        ssl.SSLError(1, message),
        urllib3.exceptions.NewConnectionError(None, message),  # type: ignore[arg-type]
        urllib3.exceptions.ReadTimeoutError(None, "/hook", message),  # type: ignore[arg-type]
        urllib3.exceptions.ProtocolError(message),
        urllib3.exceptions.SSLError(message),
    ]


@given(message=st.text(max_size=80), index=st.integers(0, 9), wrapped=st.booleans())
def test_every_network_error_maps_to_a_known_sentence(message, index, wrapped):
    """Whatever the error and its text, the operator reads one of the sentences, never the
    raw message (the part that says ``[Errno -2]``)."""
    error = _errors(message)[index]
    if wrapped:
        outer = urllib3.exceptions.ProtocolError("Connection aborted.")
        outer.__cause__ = error
        error = outer
    assert network_error_sentence(error, timeout=10) in SENTENCES


@given(message=st.text(min_size=1, max_size=80))
def test_a_guard_refusal_is_quoted_after_a_fixed_sentence(message):
    sentence = network_error_sentence(netguard.UnsafeTarget(message), timeout=10)
    assert sentence == f"Not sent, blocked by the address guard: {message}"


def test_another_tenants_delivery_is_not_shown_or_replayed(owner, other, console):
    foreign_hook = _hook(other, "http://127.0.0.1:9/hook")
    foreign = _delivery(foreign_hook)
    response = console.get(_page(foreign_hook, foreign), follow=True)
    assert "code-not_found" in response.content.decode()
    mine = _hook(owner, "http://127.0.0.1:9/mine")
    # Through my own webhook's URL, with their delivery id: still not found.
    assert "code-not_found" in console.get(_page(mine, foreign), follow=True).content.decode()
    replayed = console.post(f"{_page(mine, foreign)}/replay", follow=True)
    assert "code-not_found" in replayed.content.decode()
    assert WebhookDelivery.objects.filter(subscription=foreign_hook).count() == 1
    assert foreign.pk not in signed_in(owner).get(f"/console/webhooks/{mine.pk}").content.decode()


def test_delivery_history_query_count(owner, console):
    hook = _hook(owner, "http://127.0.0.1:9/hook")

    def count(n: int) -> int:
        for _ in range(n):
            _delivery(hook, status=WebhookDelivery.Status.PENDING)
        with CaptureQueriesContext(connection) as queries:
            assert console.get(f"/console/webhooks/{hook.pk}").status_code == 200
        return len(queries)

    assert count(2) == count(60)
    first = console.get(f"/console/webhooks/{hook.pk}").content.decode()
    assert "Older deliveries" in first


def test_webhook_list_query_count_and_tenant(owner, other, console):
    WebhookSubscription.objects.create(
        account=other.account, url="https://hooks.example/theirs", events=["message.sent"]
    )

    def count(n: int) -> int:
        start = WebhookSubscription.objects.filter(account=owner.account).count()
        for index in range(n):
            WebhookSubscription.objects.create(
                account=owner.account,
                url=f"https://hooks.example/{start + index}",
                events=["message.sent"],
            )
        with CaptureQueriesContext(connection) as queries:
            body = console.get("/console/webhooks").content.decode()
        assert "hooks.example/theirs" not in body
        return len(queries)

    assert count(1) == count(60)
    assert "More webhooks" in console.get("/console/webhooks").content.decode()
