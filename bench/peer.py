"""Bench mode only: the stock-DRF peer, what a user would write instead of MultiMail's API.

GET one email, the list and the send accept, on the same tables and keys as /v1, written
the way the DRF tutorial writes them: an ORM key lookup with ``select_related``,
``ModelSerializer``, generic views, ``CursorPagination`` and DRF's own history throttle on
the Redis cache. No oversight, quotas, idempotency, audit, envelope or ETag: it is the
yardstick of "what does the project's extra work cost", not a product. Mounted under
/bench/peer/ by bench/urls.py; ``tests/bench`` holds its rows equal to /v1's.
"""

from __future__ import annotations

import hmac
from typing import Any

from django.db import transaction
from django.shortcuts import get_object_or_404
from rest_framework import generics, serializers
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import ApiKey
from accounts.services import LOOKUP_PREFIX_LENGTH, hash_key
from mailboxes.enqueue import process_email_after_commit
from mailboxes.models import Direction, Email, EmailStatus, Mailbox
from mailboxes.serializers_reading import EmailResponseSerializer, EmailSummarySerializer
from multimail.ids import new_id


class PeerUser:
    """``request.user``: the account of the key that authenticated."""

    is_authenticated = True

    def __init__(self, key: ApiKey) -> None:
        self.account = key.account


class PeerKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[PeerUser, ApiKey] | None:
        scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not raw:
            return None
        key = (
            ApiKey.objects.select_related("account")
            .filter(prefix=raw[:LOOKUP_PREFIX_LENGTH], is_active=True)
            .first()
        )
        if key is None or not hmac.compare_digest(key.key_hash, hash_key(raw)):
            raise AuthenticationFailed("Invalid API key.")
        return PeerUser(key), key

    def authenticate_header(self, request: Request) -> str:
        return "Bearer"


class PeerKeyThrottle(SimpleRateThrottle):
    """DRF's throttle per key: a list of request times in the cache, read and written back
    on every request. The bench lifts the limit as it does the project's; a one-second
    window keeps the list at a second of requests, as a real per-minute limit near its
    ceiling would (a per-minute window with a limit of 10^9 would make the list grow to a
    minute of bench traffic, which no deployment sees)."""

    scope = "peer"
    rate = "1000000000/s"

    def get_cache_key(self, request: Request, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}


class PeerCursorPagination(CursorPagination):
    page_size = 20
    ordering = "-id"


def _columns_of(serializer: type[serializers.ModelSerializer[Email]]) -> list[str]:
    """The model columns one of the project's serializers renders, under their model names:
    the peer renders the same columns, the stock way (the rest are computed, not stored)."""
    renamed = {"from": "from_address", "mailbox_id": "mailbox"}
    stored = {field.name for field in Email._meta.concrete_fields}
    names = (renamed.get(name, name) for name in serializer.Meta.fields)
    return [name for name in names if name in stored]


class PeerEmailSerializer(serializers.ModelSerializer[Email]):
    class Meta:
        model = Email
        fields = _columns_of(EmailResponseSerializer)
        read_only_fields = fields


class PeerEmailSummarySerializer(serializers.ModelSerializer[Email]):
    class Meta:
        model = Email
        fields = _columns_of(EmailSummarySerializer)
        read_only_fields = fields


class PeerSendSerializer(serializers.ModelSerializer[Email]):
    to = serializers.ListField(child=serializers.EmailField(), min_length=1, max_length=50)

    class Meta:
        model = Email
        fields = ["id", "to", "subject", "markdown", "status", "thread_id"]
        read_only_fields = ["id", "status", "thread_id"]


class _PeerView:
    authentication_classes = [PeerKeyAuthentication]
    permission_classes = [IsAuthenticated]
    throttle_classes = [PeerKeyThrottle]
    parser_classes = [JSONParser]


class PeerEmailList(_PeerView, generics.ListAPIView[Email]):
    serializer_class = PeerEmailSummarySerializer
    pagination_class = PeerCursorPagination

    def get_queryset(self) -> Any:
        return Email.objects.filter(
            account=self.request.user.account, mailbox_id=self.kwargs["mailbox_id"]
        )


class PeerEmailDetail(_PeerView, generics.RetrieveAPIView[Email]):
    serializer_class = PeerEmailSerializer
    lookup_url_kwarg = "email_id"

    def get_queryset(self) -> Any:
        return Email.objects.filter(
            account=self.request.user.account, mailbox_id=self.kwargs["mailbox_id"]
        )


class PeerSend(_PeerView, generics.CreateAPIView[Email]):
    """Store the email as pending_scan and queue it for the same worker pipeline."""

    serializer_class = PeerSendSerializer

    def perform_create(self, serializer: Any) -> None:
        mailbox = get_object_or_404(
            Mailbox, pk=self.kwargs["mailbox_id"], account=self.request.user.account
        )
        with transaction.atomic():
            email = serializer.save(
                account=mailbox.account,
                mailbox=mailbox,
                direction=Direction.OUTBOUND,
                status=EmailStatus.PENDING_SCAN,
                from_address=mailbox.address,
                thread_id=new_id(),
                sent_by_key=self.request.auth,
            )
            process_email_after_commit(email.pk)
