"""The live event stream under `make run` (SQLite, the database cache, the same gunicorn
with uvicorn workers): a held send shows up on an open stream, a reconnect with
Last-Event-ID does not repeat it, and an open stream does not slow a stop down."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.embedded.conftest import EmbeddedService, running_service
from tests.events.conftest import Stream

pytestmark = pytest.mark.embedded

# make run's own bound (tests/embedded/test_make_run.py): a stop is over within this.
STOP_SECONDS = 5.0


@pytest.fixture(scope="module")
def embedded_alone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedService]:
    # Its own service: the test stops it with a stream open.
    yield from running_service(tmp_path_factory, "embedded-events")


def test_a_stream_under_make_run(embedded_alone: EmbeddedService) -> None:
    service = embedded_alone
    demo = service.credentials()
    key, mailbox = demo["MULTIMAIL_API_KEY"], demo["MULTIMAIL_MAILBOX_ID"]
    stream = Stream(service.base_url, key, query=f"mailbox_id={mailbox}", timeout=40)
    assert stream.status == 200, stream.error()
    sent = service.request(
        "POST",
        f"/v1/mailboxes/{mailbox}/send",
        {"to": ["someone@example.com"], "subject": "Streamed", "markdown": "Hi"},
        key=key,
    )
    assert sent.status == 202, sent.body
    # The demo mailbox is gated: the send is held for the operator.
    held = stream.events(1)[0]
    assert held.event == "oversight.pending"
    assert held.json()["data"]["email_id"] == sent.body["id"]
    stream.close()

    resumed = Stream(service.base_url, key, last_event_id=held.id, timeout=40)
    assert resumed.status == 200
    resumed.quiet_for(heartbeats=1)
    # Stopped with the stream still open: the worker ends it before the graceful timeout
    # runs out, rather than being killed with it.
    assert service.stop() < STOP_SECONDS
    resumed.close()
    log = service.log()
    assert "timeout graceful shutdown exceeded" in log
    assert "SIGKILL" not in log, log[-3000:]
