"""API-key authentication: ``Authorization: Bearer mm_live_...`` or ``X-API-Key``.

Each process remembers the principals it resolved (the key and its account rows), so an
API request does not look its key up in the database. A remembered principal is used only
while its account's version (accounts.principals) is the one it was loaded under; the
version is read in the round trip that counts the request against the key's rate limit,
so checking it costs no extra trip. The services that write the account or its keys
replace the version, and the next request in every process loads the rows again.

The same round trip carries the request's count in its account's API calls, which billing
keeps (``settings.API_CALL_COUNTER``): a remembered principal's request costs one trip to the
cache for all three.
"""

from __future__ import annotations

import copy
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core.cache import cache
from django.db.models import Model
from django.db.models.base import ModelState
from django.utils.module_loading import import_string
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from accounts.actors import Actor
from accounts.models import AccountState, ApiKey
from accounts.principals import principal_version_key
from accounts.services import KEY_PREFIX, LOOKUP_PREFIX_LENGTH, api_key_touch, hash_key
from multimail.cache import Counted, Counter, counter_add, counters_add
from multimail.errors import ApiError
from multimail.ratelimit import Hit, hit_and_read

logger = logging.getLogger("multimail.api")

RATE_WINDOW_SECONDS = 60


@dataclass(frozen=True, slots=True)
class KeyBudget:
    bucket: str
    limit_type: str  # "read" or "send", as the rate_limit_exceeded error names it
    limit: int


def api_key_budget(key_id: str, method: str) -> KeyBudget:
    """The rate-limit budget a request of ``method`` with the key counts against: reads
    (GET/HEAD/OPTIONS) and writes count separately, per minute."""
    if method in ("GET", "HEAD", "OPTIONS"):
        return KeyBudget(f"key:{key_id}:read", "read", settings.API_RATE_LIMIT_READ_PER_MINUTE)
    return KeyBudget(f"key:{key_id}:send", "send", settings.API_RATE_LIMIT_SEND_PER_MINUTE)


@dataclass(frozen=True, slots=True)
class ApiPrincipal:
    """What ``request.user`` is for an API call: the key and its account."""

    api_key: ApiKey
    # The request's count against the key's rate limit, when authentication already made
    # it (the remembered-principal check); the throttle then uses it instead of counting.
    counted: Hit | None = None
    # The request's count in its account's API calls, when authentication made it in the
    # same round trip (``settings.API_CALL_COUNTER``); billing then only finishes it.
    api_call: Counted | None = None

    is_authenticated = True
    is_anonymous = False

    @property
    def account(self) -> Any:
        return self.api_key.account

    @property
    def actor(self) -> Actor:
        return Actor.for_key(self.api_key)


def _credential(request: Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise ApiError(
                "authentication_required",
                "The Authorization header must be 'Bearer mm_live_YOUR_KEY'.",
            )
        return value.strip()
    api_key = request.headers.get("X-API-Key")
    if api_key is not None:
        return api_key.strip()
    return None


def api_principal(request: Request) -> ApiPrincipal:
    """The caller of an API view that requires a scope: ``ScopePermission`` has already
    authenticated an API key before any handler runs, so ``request.user`` is its principal."""
    assert isinstance(request.user, ApiPrincipal)
    return request.user


def api_key_authenticate(raw: str) -> ApiKey:
    """The active key of an active account that ``raw`` is, or the catalog error saying why
    not. Every door that takes an API key (the API, MCP, SMTP submission) checks it here."""
    key = _api_key_lookup(raw, hash_key(raw))
    api_key_ensure_usable(key)
    api_key_touch(api_key=key)
    return key


def _api_key_lookup(raw: str, digest: str) -> ApiKey:
    """The key row (with its account) that ``raw`` is, usable or not."""
    if not raw.startswith(KEY_PREFIX) or len(raw) < LOOKUP_PREFIX_LENGTH + 8:
        raise ApiError(
            "authentication_required",
            "That is not a MultiMail API key; keys start with mm_live_.",
        )
    key = ApiKey.objects.select_related("account").filter(prefix=raw[:LOOKUP_PREFIX_LENGTH]).first()
    if key is None or not hmac.compare_digest(key.key_hash, digest):
        raise ApiError("invalid_api_key")
    return key


@dataclass(slots=True)
class _Remembered:
    key: ApiKey  # with its account; never handed out, only copied (see _copy)
    version: Any  # the account's principal version it was loaded under
    loaded_at: float


# A principal loaded without its version (the first request of a key in this process: the
# account, and so which version to read, is known only from the row) is reloaded, with the
# version read first, on its next request.
_UNCONFIRMED = object()

# By the SHA-256 of the raw key: only a caller that sent the whole key finds its entry.
_remembered: dict[str, _Remembered] = {}
# Beyond this many keys in one process, memory starts again (a bound, not an eviction
# policy: it is far above the keys one web process serves).
_REMEMBERED_MAX = 10_000


def _remember(digest: str, key: ApiKey, version: Any) -> None:
    if len(_remembered) >= _REMEMBERED_MAX:
        _remembered.clear()
    _remembered[digest] = _Remembered(_copy(key), version, time.monotonic())


def _copy(key: ApiKey) -> ApiKey:
    """A request's own instances of the remembered rows: a view that changes one (the period
    start is advanced in place, a related row is cached on it) changes nothing for the next
    request. Mutable field values (the scopes list) are copied too."""
    mine = _own(key)
    mine.account = _own(key.account)
    return mine


# Field values a view cannot change in place: shared between the copies, not copied.
_IMMUTABLE = frozenset({str, int, float, bool, type(None), datetime, date, Decimal, UUID})


def _own[M: Model](instance: M) -> M:
    """What ``copy.copy`` of the model instance gives (its own state, no cached related
    rows), with mutable values copied, built without the pickling round trip a model's
    copy goes through: every remembered request makes two."""
    cls = type(instance)
    mine = cls.__new__(cls)
    mine.__dict__ = {
        name: value if type(value) in _IMMUTABLE else copy.copy(value)
        for name, value in instance.__dict__.items()
        if name != "_state"
    }
    state = ModelState.__new__(ModelState)
    # As ModelState.__getstate__ leaves them: no weak references to peers.
    state.__dict__ = {k: v for k, v in instance._state.__dict__.items() if k != "peers"}
    state.fields_cache = {}
    mine._state = state
    return mine


# Which counter, if any, counts a request in its account's API calls: the request and its
# remembered key in, the counter out (None: not counted before the view).
ApiCallCounter = Callable[[Request, ApiKey], Counter | None]


def _api_call_counter() -> ApiCallCounter | None:
    """The counter ``settings.API_CALL_COUNTER`` names (billing's), counted in the round
    trip that checks a remembered principal's version; none when it is empty. Named in
    settings, as middleware is, because billing sits above this layer."""
    path = settings.API_CALL_COUNTER
    return import_string(path) if path else None  # type: ignore[no-any-return]


def _remembered_principal(request: Request, raw: str) -> ApiPrincipal:
    """The principal of ``raw``, from this process's memory when its account's version has
    not changed since it was loaded, else from the database."""
    digest = hash_key(raw)
    remembered = _remembered.get(digest)
    if remembered is None or time.monotonic() - remembered.loaded_at > (
        settings.API_PRINCIPAL_CACHE_SECONDS
    ):
        key = _api_key_lookup(raw, digest)
        _remember(digest, key, _UNCONFIRMED)
        return ApiPrincipal(key)
    version_key = principal_version_key(remembered.key.account_id)
    api_call = _api_call_counter_for(request, remembered.key)
    also = [api_call] if api_call is not None else []
    counted: Hit | None = None
    if _counts_the_request(request):
        budget = api_key_budget(remembered.key.pk, str(request.method))
        counted, version, added = hit_and_read(
            budget.bucket,
            limit=budget.limit,
            window_seconds=RATE_WINDOW_SECONDS,
            read=version_key,
            also=also,
        )
    elif also:
        added, version = counters_add(also, read=version_key)
    else:
        added, version = [], cache.get(version_key)
    api_called = added[0] if added else None
    # No version yet (None: the account was not written since versions expire) matches a
    # principal loaded under none: it is at most API_PRINCIPAL_CACHE_SECONDS old, and a
    # version lives far longer, so it cannot have come and gone since.
    if version == remembered.version:
        return ApiPrincipal(_copy(remembered.key), counted, api_called)
    # Changed since (or never confirmed): the rows again, read after the version, so a
    # change that commits meanwhile replaces the version again and is seen next time.
    try:
        key = _api_key_lookup(raw, digest)
    except BaseException:
        _api_call_uncount(api_called)
        raise
    _remember(digest, key, version)
    return ApiPrincipal(key, counted, api_called)


def _api_call_counter_for(request: Request, key: ApiKey) -> Counter | None:
    """The API-call counter to add in the version's round trip. Only for a key usable as
    remembered: a request refused with it is not an API call, and the rare one refused
    after all (the version changed, and the rows read again refuse it) is taken back."""
    counter = _api_call_counter()
    if counter is None:
        return None
    try:
        api_key_ensure_usable(key)
    except ApiError:
        return None
    return counter(request, key)


def _api_call_uncount(counted: Counted | None) -> None:
    """Take back a request's API call counted in the version's round trip, when the request
    turned out not to be authenticated: it is then no API call, as if never counted."""
    if counted is None:
        return
    counter = counted.counter
    try:
        counter_add(counter.key, -counter.amount, ttl=counter.ttl)
        if counted.flagged and counter.flag is not None:
            cache.delete(counter.flag[0])
    except Exception:  # cache backends raise their own errors; the refusal goes on
        logger.warning("api_call_uncount_failed key=%s", counter.key)


def _counts_the_request(request: Request) -> bool:
    """The view limits API keys' request rates: its throttle would count this request."""
    view = (request.parser_context or {}).get("view")
    return view is not None and any(
        getattr(throttle, "counted_by_authentication", False) for throttle in view.get_throttles()
    )


def api_key_ensure_usable(key: ApiKey) -> None:
    """The key is not revoked and its account is active: checked on every use of a key,
    and again by a door that holds a key across requests (an SMTP session)."""
    if not key.is_active:
        raise ApiError(
            "invalid_api_key",
            "This API key was revoked. Create a new one with "
            "POST /v1/api-keys or check GET /v1/api-keys.",
        )
    account = key.account
    if account.state == AccountState.PENDING:
        raise ApiError("account_not_activated")
    if account.state == AccountState.DEACTIVATED:
        reason = account.deactivated_reason or "no reason given"
        raise ApiError(
            "account_deactivated",
            f"This account is deactivated ({reason}). Check the oversight email "
            "for the notice and contact support for reactivation.",
            reason=account.deactivated_reason or None,
        )


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[ApiPrincipal, ApiKey] | None:
        raw = _credential(request)
        if raw is None:
            return None
        if not settings.API_PRINCIPAL_CACHE_SECONDS:
            key = api_key_authenticate(raw)
            return ApiPrincipal(key), key
        principal = _remembered_principal(request, raw)
        key = principal.api_key
        try:
            api_key_ensure_usable(key)
            touched = key.last_used_at
            api_key_touch(api_key=key)
        except BaseException:
            _api_call_uncount(principal.api_call)
            raise
        if key.last_used_at != touched:  # refreshed: remember it, or every request would
            remembered = _remembered.get(key.key_hash)
            if remembered is not None:
                remembered.key.last_used_at = key.last_used_at
        return principal, key

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 (not 403) when credentials are missing.
        return 'Bearer realm="api"'


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "multimail.authentication.ApiKeyAuthentication"
    name = ["bearerAuth", "ApiKeyAuth"]
    priority = 1

    def get_security_definition(self, auto_schema: Any) -> list[dict[str, str]]:
        return [
            {"type": "http", "scheme": "bearer", "bearerFormat": "mm_live_..."},
            {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        ]

    def get_security_requirement(self, auto_schema: Any) -> list[dict[str, list[Any]]]:
        # Either header authenticates: two alternative requirements. One requirement naming
        # both schemes would mean that both headers must be sent.
        return [{name: []} for name in self.name]
