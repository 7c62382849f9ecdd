"""``GET /v1/events``: the account's events as server-sent events, served as ASGI.

A stream is open for minutes or hours; under a2wsgi it would hold one of the few Django
threads of its process the whole time. Here it is a coroutine: the key is checked, the
parameters validated and a slot taken on a thread (the API's own authentication and
services), then every ``EVENTS_POLL_SECONDS`` one short query on a thread looks for new
events, and no database connection is held between polls. ``multimail.asgi`` routes the
path here, for the compat base URL too (whose errors take MultiMail's own shape).

Frames: ``id: <seq>`` (send it back as ``Last-Event-ID`` to resume), ``event: <type>``,
``data: <the webhook body>``; a ``: heartbeat`` comment every ``EVENTS_HEARTBEAT_SECONDS``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import anyio
import anyio.to_thread
from django.conf import settings
from django.db import connections
from starlette.types import Receive, Scope, Send

from billing.usage import api_call_count
from mailboxes.services.event_stream import (
    PAGE_SIZE,
    StreamEvent,
    StreamParams,
    StreamSlot,
    events_after,
    slot_ttl_seconds,
    stream_key_valid,
    stream_params,
    stream_slot_acquire,
    stream_slot_refresh,
    stream_slot_release,
    stream_start,
)
from multimail.asgi_auth import (
    host_allowed,
    is_secure,
    json_answer,
    key_principal,
    region_refusal,
    request_headers,
)
from multimail.compat import COMPAT_ROOT, is_compat_path
from multimail.errors import ApiError
from multimail.exceptions import envelope, multimail_body
from multimail.ids import new_id

logger = logging.getLogger("multimail.events")

EVENTS_PATHS = frozenset({"/v1/events", f"/{COMPAT_ROOT}v1/events"})
# How long a client waits before reconnecting after the stream drops (the SSE retry field).
RECONNECT_MILLISECONDS = 3000


def _closing[T](function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    # Runs on a worker thread: its connection is closed before the thread is reused, so an
    # idle stream holds no database connection.
    try:
        return function(*args, **kwargs)
    finally:
        connections.close_all()


async def _on_thread[T](function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await anyio.to_thread.run_sync(lambda: _closing(function, *args, **kwargs))


@dataclass(frozen=True, slots=True)
class _Opened:
    params: StreamParams
    slot: StreamSlot
    start: int


def _open(headers: dict[str, str], query: dict[str, list[str]]) -> _Opened:
    refusal = region_refusal(headers)
    if refusal is not None:
        raise refusal
    principal = key_principal(
        headers, missing="No API key was sent. Add Authorization: Bearer mm_live_YOUR_KEY."
    )
    mailbox_ids = [value for value in query.get("mailbox_id", []) if value]
    types = [
        name.strip() for value in query.get("type", []) for name in value.split(",") if name.strip()
    ]
    params, resume_after = stream_params(
        principal=principal,
        mailbox_id=mailbox_ids[-1] if mailbox_ids else None,
        types=types,
        last_event_id=headers.get("last-event-id"),
    )
    slot = stream_slot_acquire(key_id=params.key_id)
    try:
        # One API call in GET /v1/usage, as every other authenticated request.
        api_call_count(account=principal.account)
        start = stream_start(params=params, resume_after=resume_after)
    except BaseException:
        stream_slot_release(slot)
        raise
    return _Opened(params=params, slot=slot, start=start)


def _heartbeat(key_id: str, slot: StreamSlot) -> bool:
    if not stream_key_valid(key_id=key_id):
        return False
    stream_slot_refresh(slot)
    return True


def _frame(event: StreamEvent) -> bytes:
    data = json.dumps(event.body, separators=(",", ":"))
    return f"id: {event.seq}\nevent: {event.event_type}\ndata: {data}\n\n".encode()


async def _error(send: Send, scope: Scope, error: ApiError, request_id: str) -> None:
    body = (
        multimail_body(error, request_id)
        if is_compat_path(scope["path"])
        else envelope(error, request_id)
    )
    headers: list[tuple[bytes, bytes]] = [(b"x-request-id", request_id.encode())]
    if error.status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="api"'))
    elif error.status == 405:
        headers.append((b"allow", b"GET"))
    elif error.code == "rate_limit_exceeded":
        headers.append((b"retry-after", str(slot_ttl_seconds()).encode()))
    await json_answer(send, error.status, body, headers)


async def _until_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        continue
    scope.cancel()


async def _pump(send: Send, opened: _Opened) -> None:
    """Polls and sends until the key stops being valid (the client's disconnect cancels)."""
    after = opened.start
    last_beat = anyio.current_time()
    while True:
        events, after = await _on_thread(events_after, params=opened.params, after=after)
        if events:
            body = b"".join(_frame(event) for event in events)
            await send({"type": "http.response.body", "body": body, "more_body": True})
        if anyio.current_time() - last_beat >= settings.EVENTS_HEARTBEAT_SECONDS:
            if not await _on_thread(_heartbeat, opened.params.key_id, opened.slot):
                return
            beat = b": heartbeat\n\n"
            await send({"type": "http.response.body", "body": beat, "more_body": True})
            last_beat = anyio.current_time()
        if len(events) < PAGE_SIZE:
            await anyio.sleep(settings.EVENTS_POLL_SECONDS)


async def events_app(scope: Scope, receive: Receive, send: Send) -> None:
    headers = request_headers(scope)
    request_id = f"req_{new_id()}"
    if not host_allowed(headers):
        bad_host = ApiError("invalid_parameter", "This host is not served here.", param="Host")
        await _error(send, scope, bad_host, request_id)
        return
    if settings.SECURE_SSL_REDIRECT and not is_secure(scope, headers):
        # What Django's SecurityMiddleware does for every other path.
        query = scope.get("query_string", b"").decode("latin-1")
        location = f"https://{headers['host']}{scope['path']}" + (f"?{query}" if query else "")
        redirect = [(b"x-request-id", request_id.encode()), (b"location", location.encode())]
        await json_answer(send, 301, {}, redirect)
        return
    if scope["method"] != "GET":
        await _error(send, scope, ApiError("method_not_allowed"), request_id)
        return
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    try:
        opened = await _on_thread(_open, headers, query)
    except ApiError as error:
        await _error(send, scope, error, request_id)
        return
    try:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                    # Proxies that buffer responses (nginx) would hold the events back.
                    (b"x-accel-buffering", b"no"),
                    (b"x-request-id", request_id.encode()),
                ],
            }
        )
        opening = f"retry: {RECONNECT_MILLISECONDS}\n: stream open\n\n".encode()
        await send({"type": "http.response.body", "body": opening, "more_body": True})
        async with anyio.create_task_group() as group:
            group.start_soon(_until_disconnect, receive, group.cancel_scope)
            await _pump(send, opened)
            group.cancel_scope.cancel()
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        # Also when the client left (the task group was cancelled): the slot is freed now,
        # not when its TTL runs out.
        with anyio.CancelScope(shield=True):
            await _on_thread(stream_slot_release, opened.slot)
        logger.info("event_stream_closed key=%s request_id=%s", opened.params.key_id, request_id)
