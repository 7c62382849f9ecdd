"""Bench mode only (MULTIMAIL_BENCH=1): the product's routes plus two yardsticks.

The plain view is the floor to compare against: a bare Django function view that runs
one INSERT into a scratch table bench/run.py creates, with no auth, DRF or envelope. The
peer (bench/peer.py) is what a user would write with stock DRF for the same requests.
"""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import path

from bench import peer
from multimail.urls import urlpatterns as product_urlpatterns

PLAIN_TABLE = "bench_plain_hits"


def plain_insert(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {PLAIN_TABLE} (created_at) VALUES (now())")  # noqa: S608
    return JsonResponse({"ok": True})


_PEER_MAILBOX = "bench/peer/mailboxes/<str:mailbox_id>"

urlpatterns = [
    path("bench/plain", plain_insert),
    path(f"{_PEER_MAILBOX}/emails", peer.PeerEmailList.as_view()),
    path(f"{_PEER_MAILBOX}/emails/<str:email_id>", peer.PeerEmailDetail.as_view()),
    path(f"{_PEER_MAILBOX}/send", peer.PeerSend.as_view()),
    *product_urlpatterns,
]
