"""Every /v1/ route x every scope x another tenant's ids.

The routes are read from the URL resolver, so a route added later is covered without
touching this file. For each authenticated operation:

- no key: ``authentication_required``;
- a key without the declared scope: ``insufficient_permissions`` naming ``required_scope``;
- a key with the scope, but the path names another tenant's objects: the same answer as
  for ids that do not exist (``not_found`` for reads and deletes) — never 403, never 2xx;
- and the other tenant's rows are untouched afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.urls import get_resolver
from rest_framework.test import APIClient

from accounts.models import ApiKey
from accounts.services import api_key_create
from mailboxes.models import (
    Attachment,
    Contact,
    Direction,
    Domain,
    Email,
    EmailStatus,
    Suppression,
    WebhookSubscription,
)
from multimail.ids import new_id
from multimail.permissions import has_scope
from tests.conftest import Tenant, assert_error, client_for

pytestmark = pytest.mark.django_db

SCOPES = ("read", "send", "admin", "oversight", "oversight_read", "none")
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True)
class Operation:
    method: str
    route: str  # "v1/mailboxes/%(mailbox_id)s/send"
    params: tuple[str, ...]
    required_scope: str | tuple[str, ...] | None

    @property
    def has_ids(self) -> bool:
        return bool(self.params)

    def path(self, value_for: Callable[[str, str], str]) -> str:
        """The route with each parameter filled in from the literal segment before it."""
        values = {}
        for name in self.params:
            before = self.route.split(f"%({name})s")[0].rstrip("/").rsplit("/", 1)[-1]
            values[name] = value_for(before, name)
        return "/" + self.route % values

    def __str__(self) -> str:
        return f"{self.method} /{self.route}"


def api_operations() -> list[Operation]:
    """Authenticated DRF operations under /v1/ (public views opt out of authentication).

    Read from the resolver's reverse table, which has every route (path() and re_path(),
    through every include()) as a format string with its parameter names.
    """
    resolver = get_resolver()
    operations = set()
    for callback in list(resolver.reverse_dict):
        view_class = getattr(callback, "cls", None)
        if view_class is None:
            continue
        initkwargs = getattr(callback, "initkwargs", {})
        authentication = initkwargs.get("authentication_classes", view_class.authentication_classes)
        permissions = initkwargs.get("permission_classes", view_class.permission_classes)
        if not authentication or not permissions:
            continue
        actions = getattr(callback, "actions", None)
        methods = (
            [m.upper() for m in actions]
            if actions
            else [
                m.upper()
                for m in view_class.http_method_names
                if m not in ("options", "head", "trace") and hasattr(view_class, m)
            ]
        )
        scopes = getattr(view_class, "required_scopes", None) or {}
        # A view that names scopes for some methods but not this one serves it publicly
        # (POST /v1/account is signup beside the authenticated GET/PATCH/DELETE).
        methods = [m for m in methods if not scopes or m in scopes]
        for possibilities, *_ in resolver.reverse_dict.getlist(callback):
            for route, params in possibilities:
                if route.startswith("v1/"):
                    operations |= {
                        Operation(m, route, tuple(params), scopes.get(m)) for m in methods
                    }
    return sorted(operations, key=str)


@dataclass
class Foreign:
    """The other tenant's objects, one of each kind a path can name."""

    tenant: Tenant
    email: Email
    api_key: ApiKey
    webhook: WebhookSubscription
    domain: Domain
    contact: Contact
    suppression: Suppression
    attachment: Attachment

    def value_for(self, segment: str, name: str) -> str:
        """The id to put in a path parameter, from the literal segment before it."""
        by_segment = {
            "mailboxes": self.tenant.mailbox.id,
            "emails": self.email.id,
            "reply": self.email.id,
            "threads": self.email.thread_id,
            "api-keys": self.api_key.id,
            "webhooks": self.webhook.id,
            "domains": self.domain.id,
            "contacts": self.contact.id,
            "suppression": self.suppression.email_address,
            "attachments": self.attachment.filename,
            "tags": "project",
        }
        if segment in by_segment:
            return by_segment[segment]
        lowered = name.lower()
        for hint, value in (
            ("mailbox", self.tenant.mailbox.id),
            ("thread", self.email.thread_id),
            ("email", self.email.id),
            ("webhook", self.webhook.id),
            ("domain", self.domain.id),
            ("contact", self.contact.id),
            ("key", self.api_key.id),
        ):
            if hint in lowered:
                return value
        return new_id()

    def snapshot(self) -> dict[str, Any]:
        account = self.tenant.account
        return {
            "emails": sorted(
                Email.objects.filter(account=account).values_list("id", "status", "tags")
            ),
            "mailboxes": sorted(
                account.mailboxes.values_list("id", "is_active", "oversight_mode", "display_name")
            ),
            "keys": sorted(account.api_keys.values_list("id", "is_active", "scopes", "name")),
            "webhooks": sorted(account.webhook_subscriptions.values_list("id", "is_active")),
            "domains": sorted(account.domains.values_list("id", "status")),
            "contacts": sorted(account.contacts.values_list("id", "name")),
            "suppressions": sorted(account.suppressions.values_list("id", "email_address")),
        }


@pytest.fixture
def foreign(other: Tenant) -> Foreign:
    account = other.account
    email = Email.objects.create(
        account=account,
        mailbox=other.mailbox,
        direction=Direction.OUTBOUND,
        status=EmailStatus.PENDING_SEND_APPROVAL,
        from_address=other.mailbox.address,
        to=["someone@example.com"],
        subject="Secret plans",
        markdown="Do not leak",
        thread_id=new_id(),
        tags={"project": "x"},
    )
    attachment = Attachment.objects.create(
        email=email, filename="plans.txt", content_type="text/plain", size=4, content=b"plan"
    )
    Email.objects.filter(pk=email.pk).update(has_attachments=True)
    api_key, _ = api_key_create(account=account, name="theirs", scopes=["read"])
    return Foreign(
        tenant=other,
        email=email,
        api_key=api_key,
        webhook=WebhookSubscription.objects.create(
            account=account,
            url="https://hooks.globex.example/in",
            events=["message.received"],
            signing_secret="whsec_" + "a" * 32,
        ),
        domain=Domain.objects.create(account=account, domain="mail.globex.example"),
        contact=Contact.objects.create(
            account=account, name="Their CFO", email="cfo@globex.example"
        ),
        suppression=Suppression.objects.create(
            account=account, email_address="gone@globex.example", reason="manual"
        ),
        attachment=attachment,
    )


@pytest.fixture
def clients(owner: Tenant) -> dict[str, APIClient]:
    """One client per scope for the owner; "none" is a key stripped of every scope."""
    result = {}
    for scope in SCOPES:
        if scope == "none":
            key, raw = api_key_create(account=owner.account, name="none", scopes=["read"])
            ApiKey.objects.filter(pk=key.pk).update(scopes=[])
        else:
            _, raw = api_key_create(account=owner.account, name=scope, scopes=[scope])
        result[scope] = client_for(raw)
    return result


def _call(client: APIClient, method: str, path: str) -> Any:
    return client.generic(method, path, data="{}", content_type="application/json")


@pytest.fixture(autouse=True)
def _generous_budgets(settings: Any) -> None:
    # The matrix makes hundreds of requests per key; the throttle has its own tests.
    settings.API_RATE_LIMIT_READ_PER_MINUTE = 100_000
    settings.API_RATE_LIMIT_SEND_PER_MINUTE = 100_000


def test_the_matrix_sees_the_api() -> None:
    operations = api_operations()
    routes = {operation.route for operation in operations}
    # A walk that found nothing would pass every other test vacuously.
    assert "v1/account" in routes, sorted(routes)
    assert len(operations) >= 5, [str(operation) for operation in operations]


def test_every_operation_needs_a_key(foreign: Foreign) -> None:
    anonymous = APIClient()
    for operation in api_operations():
        response = _call(anonymous, operation.method, operation.path(foreign.value_for))
        assert response.status_code == 401, (str(operation), response.content[:300])
        assert_error(response, "authentication_required")


def test_every_scoped_operation_refuses_keys_without_its_scope(
    clients: dict[str, APIClient], foreign: Foreign
) -> None:
    checked = 0
    for operation in api_operations():
        if operation.required_scope is None:
            continue
        path = operation.path(foreign.value_for)
        for scope, client in clients.items():
            granted = [] if scope == "none" else [scope]
            if has_scope(granted, operation.required_scope):
                continue
            response = _call(client, operation.method, path)
            assert response.status_code == 403, (str(operation), scope, response.content[:300])
            # Of scopes any one of which will do, the error names the first.
            named = operation.required_scope
            assert_error(
                response,
                "insufficient_permissions",
                required_scope=named if isinstance(named, str) else named[0],
            )
            checked += 1
    assert checked, "no operation declares required_scopes"


def _client_with(
    clients: dict[str, APIClient], required: str | tuple[str, ...] | None
) -> APIClient:
    if required is None:
        return clients["admin"]
    return next(
        client
        for scope, client in clients.items()
        if scope != "none" and has_scope([scope], required)
    )


def test_another_tenants_ids_are_not_found(clients: dict[str, APIClient], foreign: Foreign) -> None:
    before = foreign.snapshot()
    checked = []
    for operation in api_operations():
        if not operation.has_ids:
            continue
        client = _client_with(clients, operation.required_scope)
        theirs = _call(client, operation.method, operation.path(foreign.value_for))
        missing = _call(client, operation.method, operation.path(lambda _s, _n: new_id()))
        label = (str(operation), theirs.content[:300])
        assert theirs.status_code != 403, label
        assert not 200 <= theirs.status_code < 300, label
        # Indistinguishable from an id that does not exist: no enumeration.
        assert theirs.status_code == missing.status_code, (label, missing.content[:300])
        assert theirs.json()["error"]["code"] == missing.json()["error"]["code"], label
        if operation.method in ("GET", "DELETE"):
            assert_error(theirs, "not_found")
        checked.append(str(operation))
    assert checked, "no route takes an id"
    assert foreign.snapshot() == before


def test_ids_in_the_body_cannot_reach_another_tenant(
    clients: dict[str, APIClient], foreign: Foreign
) -> None:
    """Routes that take the target id in the body rather than the path."""
    routes = {operation.route for operation in api_operations()}
    before = foreign.snapshot()
    if "v1/oversight/decide" in routes:
        response = clients["oversight"].post(
            "/v1/oversight/decide",
            {"email_id": foreign.email.id, "action": "approve"},
            format="json",
        )
        assert_error(response, "not_found")
    if "v1/webhooks" in routes:
        response = clients["admin"].post(
            "/v1/webhooks",
            {
                "url": "https://hooks.acme.example/in",
                "events": ["message.received"],
                "mailbox_id": foreign.tenant.mailbox.id,
            },
            format="json",
        )
        assert response.status_code in (400, 404), response.content[:300]
        assert response.status_code != 201
    foreign.email.refresh_from_db()
    assert foreign.email.status == EmailStatus.PENDING_SEND_APPROVAL
    assert foreign.email.approved_at is None
    assert foreign.snapshot() == before


def test_lists_never_show_another_tenants_rows(
    clients: dict[str, APIClient], foreign: Foreign
) -> None:
    secrets = [
        foreign.tenant.mailbox.id,
        foreign.email.id,
        foreign.email.subject,
        foreign.api_key.id,
        foreign.webhook.id,
        foreign.domain.domain,
        foreign.contact.email,
        foreign.suppression.email_address,
    ]
    for operation in api_operations():
        if operation.method != "GET" or operation.has_ids:
            continue
        client = _client_with(clients, operation.required_scope)
        body = client.get(operation.path(foreign.value_for)).content.decode(errors="replace")
        for secret in secrets:
            assert secret not in body, (str(operation), secret)
