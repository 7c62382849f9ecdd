"""GET /v1/events over real HTTP against a live web process: a stream held open while mail
arrives, resumed with Last-Event-ID after a disconnect with every event exactly once,
filters, the per-key bound, authentication and scope, tenancy, and no held body."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import ApiKey
from accounts.services import api_key_create
from mailboxes.models import Mailbox
from mailboxes.services.inbound.receive import inbound_receive
from tests.conftest import make_tenant
from tests.events.conftest import Stream
from tests.oversight.conftest import mime

pytestmark = pytest.mark.django_db(transaction=True)

SECRET_BODY = "Secret body the agent must not see early."


def _key(account: Any, *scopes: str) -> str:
    return api_key_create(account=account, name="stream", scopes=list(scopes or ("read",)))[1]


def _mail(mailbox: Mailbox, subject: str, *, attachment: bool = False) -> str:
    emails = inbound_receive(
        raw=mime(to=mailbox.address, subject=subject, attachment=attachment),
        recipients=[mailbox.address],
        source="test",
    )
    return emails[0].pk


def _post(base_url: str, path: str, body: dict[str, Any], *, key: str) -> Any:
    request = urllib.request.Request(
        base_url + path,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _opened(events_url: str, key: str, **kwargs: Any) -> Stream:
    stream = Stream(events_url, key, **kwargs)
    assert stream.status == 200, stream.error()
    assert stream.response.getheader("Content-Type", "").startswith("text/event-stream")
    assert stream.frame().comments == ["stream open"]
    return stream


def test_resume_with_last_event_id_gives_each_event_once(events_url: str) -> None:
    tenant = make_tenant("streamer")
    key = _key(tenant.account)
    stream = _opened(events_url, key)
    first = [_mail(tenant.mailbox, f"First {n}") for n in range(2)]
    seen = stream.events(2)
    assert [frame.event for frame in seen] == ["message.received"] * 2
    assert [frame.json()["data"]["email_id"] for frame in seen] == first
    body = seen[0].json()
    assert body["type"] == "message.received"
    assert body["account_id"] == tenant.account.pk
    assert body["mailbox_id"] == tenant.mailbox.pk
    assert body["created_at"]
    stream.close()

    # Mail arrives while nobody listens; the reconnect names the last id it saw.
    later = [_mail(tenant.mailbox, f"Later {n}") for n in range(3)]
    resumed = _opened(events_url, key, last_event_id=seen[-1].id)
    again = resumed.events(3)
    assert [frame.json()["data"]["email_id"] for frame in again] == later
    ids = [int(frame.id or 0) for frame in [*seen, *again]]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    # Nothing is sent twice, and the stream is still live for the next email.
    resumed.quiet_for(heartbeats=1)
    newest = _mail(tenant.mailbox, "Newest")
    assert resumed.events(1)[0].json()["data"]["email_id"] == newest
    resumed.close()

    # Resuming from the very first id replays the rest, in order, once each.
    replay = _opened(events_url, key, last_event_id=seen[0].id)
    replayed = [frame.json()["data"]["email_id"] for frame in replay.events(5)]
    assert replayed == [first[1], *later, newest]
    replay.quiet_for(heartbeats=1)
    replay.close()


def test_filters_by_mailbox_and_type(events_url: str) -> None:
    tenant = make_tenant("filters", mode="gated_all")
    second = Mailbox.objects.create(
        account=tenant.account,
        address="second@filters.multimail.localhost",
        oversight_mode="autonomous",
    )
    key = _key(tenant.account)
    pending_only = _opened(
        events_url, key, query=f"mailbox_id={tenant.mailbox.pk}&type=oversight.pending"
    )
    everything = _opened(events_url, key)
    _mail(second, "To the second mailbox")
    held = _mail(tenant.mailbox, "Held for the operator")
    frame = pending_only.events(1)[0]
    assert frame.event == "oversight.pending"
    assert frame.json()["data"]["email_id"] == held
    pending_only.quiet_for(heartbeats=1)
    kinds = {(f.event, f.json()["mailbox_id"]) for f in everything.events(3)}
    assert kinds == {
        ("message.received", second.pk),
        ("oversight.pending", tenant.mailbox.pk),
        ("message.received", tenant.mailbox.pk),
    }
    pending_only.close()
    everything.close()


def test_a_held_emails_body_never_reaches_the_stream(events_url: str) -> None:
    tenant = make_tenant("heldbody", mode="gated_all")
    stream = _opened(events_url, _key(tenant.account))
    held = _mail(tenant.mailbox, "Contract draft", attachment=True)
    frames = stream.events(2)
    assert {frame.event for frame in frames} == {"oversight.pending", "message.received"}
    for frame in frames:
        assert frame.json()["data"]["email_id"] == held
        assert SECRET_BODY not in frame.raw
        assert "PDF-1.4" not in frame.raw
        assert frame.json()["data"].get("status") == "pending_inbound_approval"
    # Rejected, the email disappears from the agent's API, and the stream says nothing of it.
    decided = _post(
        events_url,
        "/v1/oversight/decide",
        {"email_id": held, "action": "reject", "reason": "Phishing"},
        key=_key(tenant.account, "oversight"),
    )
    assert decided["status"] == "rejected", decided
    stream.quiet_for(heartbeats=2)
    stream.close()


def test_another_accounts_events_never_appear(events_url: str) -> None:
    owner = make_tenant("owner")
    other = make_tenant("intruder")
    _mail(owner.mailbox, "Before anyone listens")
    # Even resuming from 0, the other account's stream holds only its own events.
    theirs = _opened(events_url, _key(other.account), last_event_id="0")
    _mail(owner.mailbox, "Private to the owner")
    theirs.quiet_for(heartbeats=2)
    own = _mail(other.mailbox, "For the intruder")
    frame = theirs.events(1)[0]
    assert frame.json()["data"]["email_id"] == own
    assert frame.json()["account_id"] == other.account.pk
    theirs.close()


def test_streams_per_key_are_bounded_and_freed_on_disconnect(events_url: str) -> None:
    tenant = make_tenant("bounded")
    key = _key(tenant.account)
    streams = [_opened(events_url, key) for _ in range(2)]
    refused = Stream(events_url, key)
    assert refused.status == 429
    error = refused.error()["error"]
    assert error["code"] == "rate_limit_exceeded"
    assert error["limit_type"] == "event_streams"
    assert int(refused.response.getheader("Retry-After", "0")) >= 1
    # Another key of the same account has its own bound.
    _opened(events_url, _key(tenant.account)).close()
    streams[0].close()
    deadline = time.monotonic() + 10
    while True:
        retry = Stream(events_url, key)
        if retry.status == 200 or time.monotonic() > deadline:
            break
        retry.close()
        time.sleep(0.3)
    assert retry.status == 200
    retry.close()
    streams[1].close()


def test_refusals_before_the_stream_opens(events_url: str) -> None:
    tenant = make_tenant("refusals")
    missing = Stream(events_url, None)
    assert missing.status == 401
    assert missing.response.getheader("WWW-Authenticate") == 'Bearer realm="api"'
    assert missing.error()["error"]["code"] == "authentication_required"
    wrong = Stream(events_url, "mm_live_" + "x" * 40)
    assert wrong.status == 401
    assert wrong.error()["error"]["code"] == "invalid_api_key"
    send_only = Stream(events_url, _key(tenant.account, "send"))
    assert send_only.status == 403
    assert send_only.error()["error"]["required_scope"] == "read"
    key = _key(tenant.account)
    bad_type = Stream(events_url, key, query="type=message.read")
    assert bad_type.status == 400
    assert bad_type.error()["error"]["param"] == "type"
    other = make_tenant("neighbour")
    foreign = Stream(events_url, key, query=f"mailbox_id={other.mailbox.pk}")
    assert foreign.status == 404
    assert foreign.error()["error"]["code"] == "not_found"
    blocked = Stream(events_url, key, headers={"X-Test-Region": "KP"})
    assert blocked.status == 451
    assert blocked.error()["error"]["code"] == "region_blocked"
    # The compat base URL answers MultiMail's own error shape.
    compat = Stream(events_url, None, path="/compat/multimail/v1/events")
    assert compat.status == 401
    assert isinstance(compat.error()["error"], str)


@pytest.fixture
def read_key(db: Any) -> str:
    return _key(make_tenant("resumer").account)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    last_event_id=st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=30
    ).filter(lambda text: not text.isdigit() or len(text) > 19)
)
def test_a_last_event_id_that_is_not_an_event_id_is_refused(
    events_url: str, read_key: str, last_event_id: str
) -> None:
    stream = Stream(events_url, read_key, last_event_id=last_event_id)
    assert stream.status == 400, last_event_id
    error = stream.error()["error"]
    assert (error["code"], error["param"]) == ("invalid_parameter", "Last-Event-ID")
    stream.close()


def test_a_revoked_key_ends_its_stream(events_url: str) -> None:
    tenant = make_tenant("revoked")
    key, raw = api_key_create(account=tenant.account, name="stream", scopes=["read"])
    stream = _opened(events_url, raw)
    ApiKey.objects.filter(pk=key.pk).update(is_active=False)
    # The next heartbeat finds the key revoked and ends the response.
    deadline = time.monotonic() + 10
    while stream.response.readline():
        assert time.monotonic() < deadline
    stream.close()
