"""The one way a tenant comes into being: the account, its first operator, its default
mailbox and the audit entry, with the guards every path needs.

Signup, the pricing checkout (billing), ``create_account`` and ``seed_demo`` all call
``account_create``. Two guards hold under concurrency: one oversight email gets at most
one account (an advisory lock per address until the transaction ends), and a slug taken
by a concurrent creation answers ``slug_taken`` with suggestions, never a database error.

The default mailbox makes this module import ``mailboxes.models``, above accounts in the
layering: creating a tenant without its mailbox would leave every caller to finish it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.actors import Actor
from accounts.models import Account, AccountState, ApiKey, Scope
from accounts.oversight_addresses import oversight_address_ensure
from accounts.plans import Plan
from accounts.services import api_key_create_audited, audit_record, operator_create
from accounts.slugs import (
    default_mailbox_address,
    slug_claimable,
    slug_from_name,
    slug_suggestions,
    slug_validate,
)
from mailboxes.models import Mailbox, OversightMode
from multimail.errors import ApiError

# The first key an operator gets: it can do everything an agent may do alone. Oversight is
# left out on purpose (a key must not both send and approve).
FIRST_KEY_SCOPES = [Scope.READ, Scope.SEND, Scope.ADMIN]


class OversightEmailInUse(Exception):
    """The oversight email already oversees an account, so no second one was created."""

    def __init__(self, account: Account) -> None:
        super().__init__(account.pk)
        self.account = account


@dataclass(frozen=True, slots=True)
class NewAccount:
    account: Account
    mailbox: Mailbox


@dataclass(frozen=True, slots=True)
class Activation:
    """An active account and its first API key (``raw_key`` is shown once)."""

    account: Account
    api_key: ApiKey
    raw_key: str
    mailbox: Mailbox | None


def oversight_email_holder(email: str) -> Account | None:
    """The newest account the address oversees, whatever its state."""
    return Account.objects.filter(oversight_email__iexact=email.strip()).order_by("-id").first()


def _lock_email(email: str) -> None:
    """Serialise creations for one address until the transaction ends, so two concurrent
    ones cannot both find no account and create two. (SQLite already runs one writing
    transaction at a time.)"""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", [f"signup:{email.lower()}"]
            )


@transaction.atomic
def account_create(
    *,
    name: str,
    oversight_email: str,
    slug: str,
    created_by: str,
    oversight_mode: str = OversightMode.GATED_SEND,
    plan: str = Plan.STARTER,
    active: bool = False,
    physical_address: str = "",
    use_case: str = "",
    confirmation_sent: bool = False,
    one_per_email: bool = True,
    audit_metadata: dict[str, Any] | None = None,
    request_id: str = "",
) -> NewAccount:
    """Create the account (pending unless ``active``) with one operator and a default
    mailbox in ``oversight_mode``; ``slug`` was checked by the caller (``signup_slug``).

    ``one_per_email`` raises ``OversightEmailInUse`` when the address already oversees an
    account; the caller decides what that answers. ``created_by`` names the path in the
    audit entry. Call it inside the caller's transaction: the email lock lasts until that
    transaction ends, so the caller's own writes are covered too.
    """
    name, email = name.strip(), oversight_email.strip()
    oversight_address_ensure(email)
    if one_per_email:
        _lock_email(email)
        existing = oversight_email_holder(email)
        if existing is not None:
            raise OversightEmailInUse(existing)
    now = timezone.now()
    try:
        with transaction.atomic():
            account = Account.objects.create(
                name=name,
                slug=slug,
                oversight_email=email,
                physical_address=physical_address,
                use_case=use_case,
                plan=plan,
                default_oversight_mode=oversight_mode,
                state=AccountState.ACTIVE if active else AccountState.PENDING,
                activated_at=now if active else None,
                confirmation_sent_at=now if confirmation_sent else None,
            )
    except IntegrityError:  # a concurrent creation took the slug between check and insert
        raise ApiError(
            "slug_taken",
            f"The slug {slug!r} was just taken. Use one of suggestions.",
            param="slug",
            suggestions=slug_suggestions(slug),
        ) from None
    operator_create(account=account, email=email, name=name, via_oversight_email=True)
    mailbox = Mailbox.objects.create(
        account=account, address=default_mailbox_address(slug), oversight_mode=oversight_mode
    )
    audit_record(
        actor=Actor.system(account, created_by),
        action="account.created",
        resource_type="account",
        resource_id=account.pk,
        metadata=audit_metadata,
        request_id=request_id,
    )
    return NewAccount(account=account, mailbox=mailbox)


@transaction.atomic
def account_provision(
    *,
    name: str,
    oversight_email: str,
    plan: str = Plan.STARTER,
    slug: str | None = None,
    key_name: str = "First key",
) -> Activation:
    """An activated account with one operator, a default mailbox and an admin key, for
    operators of this server (``create_account``, ``seed_demo``): no proof of work, no code.
    One address may oversee several accounts made this way, as the server's operator
    decides."""
    clean_slug = slug_claimable(slug=slug_validate(slug=slug or slug_from_name(name)))
    created = account_create(
        name=name,
        oversight_email=oversight_email,
        slug=clean_slug,
        created_by="provisioning",
        plan=plan,
        active=True,
        one_per_email=False,
    )
    key, raw = api_key_create_audited(
        actor=Actor.system(created.account, "provisioning"),
        name=key_name,
        scopes=list(FIRST_KEY_SCOPES),
    )
    return Activation(account=created.account, api_key=key, raw_key=raw, mailbox=created.mailbox)
