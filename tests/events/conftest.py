"""A live web process (gunicorn with the uvicorn worker, as production runs it) with short
stream timings, and a small server-sent-events client over real HTTP."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest

# The live web process of the MCP tests, started the same way.
from tests.mcp.conftest import live_server_url  # noqa: F401

# A heartbeat every second and two streams per key, so the tests see both quickly.
STREAM_ENV = {
    "EVENTS_HEARTBEAT_SECONDS": "1",
    "EVENTS_POLL_SECONDS": "0.2",
    "EVENTS_STREAMS_PER_KEY": "2",
    # The region block of every other path, read from a header the tests set.
    "REGION_HEADER": "X-Test-Region",
}


@pytest.fixture
def events_url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    # tests.mcp's live server passes the environment on to the web process.
    for name, value in STREAM_ENV.items():
        monkeypatch.setenv(name, value)
    url: str = request.getfixturevalue("live_server_url")
    return url


@dataclass
class Frame:
    """One SSE frame: its fields, and its comment lines (heartbeats)."""

    id: str | None = None
    event: str | None = None
    data: str | None = None
    comments: list[str] = field(default_factory=list)
    raw: str = ""

    def json(self) -> Any:
        assert self.data is not None
        return json.loads(self.data)


class Stream:
    """``GET /v1/events`` held open; frames are read as they arrive."""

    def __init__(
        self,
        base_url: str,
        key: str | None,
        *,
        query: str = "",
        last_event_id: str | None = None,
        path: str = "/v1/events",
        timeout: float = 15,
        headers: dict[str, str] | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        self.connection = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port, timeout=timeout
        )
        sent = {"Accept": "text/event-stream", **(headers or {})}
        if key is not None:
            sent["Authorization"] = f"Bearer {key}"
        if last_event_id is not None:
            sent["Last-Event-ID"] = last_event_id
        self.connection.request("GET", path + (f"?{query}" if query else ""), headers=sent)
        self.response = self.connection.getresponse()
        self.status = self.response.status

    def error(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.response.read())
        return body

    def frame(self) -> Frame:
        frame = Frame()
        lines: list[str] = []
        while True:
            line = self.response.readline().decode()
            assert line, "the stream ended"
            line = line.rstrip("\n")
            if not line:
                if lines:
                    frame.raw = "\n".join(lines)
                    return frame
                continue
            lines.append(line)
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "":
                frame.comments.append(value)
            elif name in ("id", "event", "data"):
                setattr(frame, name, value)

    def events(self, count: int) -> list[Frame]:
        """The next ``count`` events, past any heartbeat or comment."""
        found: list[Frame] = []
        while len(found) < count:
            frame = self.frame()
            if frame.event is not None:
                found.append(frame)
        return found

    def quiet_for(self, heartbeats: int) -> None:
        """No event arrives before ``heartbeats`` heartbeats have."""
        seen = 0
        while seen < heartbeats:
            frame = self.frame()
            assert frame.event is None, frame.raw
            seen += "heartbeat" in frame.comments

    def close(self) -> None:
        self.connection.close()
