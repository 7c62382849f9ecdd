"""Console fixtures: a browser-like client signed in as the owner's operator, held mail."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from accounts.codes import code_issue
from accounts.models import Account, AccountState, CodePurpose
from accounts.sign_in import SESSION_ACCOUNT_KEY
from mailboxes.models import Direction, Email, EmailStatus, Mailbox
from multimail.ids import new_id
from tests.conftest import Tenant
from tests.oversight.conftest import shown_version


@pytest.fixture(autouse=True)
def _quick_refresh(settings: Any) -> None:
    """Open pages ask for changes every 2 s rather than 10: a browser test that waits for
    newly held mail waits for one refresh."""
    settings.CONSOLE_REFRESH_SECONDS = 2


def card_version(console: Client, email: Email) -> str:
    """The version the email's queue card decides on (its forms' hidden field)."""
    html = console.get(f"/console/queue/{email.pk}", headers={"HX-Request": "true"})
    return shown_version(html.content.decode())


def signed_in(tenant: Tenant) -> Client:
    client = Client()
    client.force_login(tenant.operator.user)
    session = client.session
    session[SESSION_ACCOUNT_KEY] = tenant.account.pk
    session.save()
    return client


@pytest.fixture
def console(owner: Tenant) -> Client:
    return signed_in(owner)


def held_email(
    mailbox: Mailbox,
    *,
    direction: str = Direction.OUTBOUND,
    subject: str = "Quarterly numbers",
    html: str = "<p>Hello <b>there</b></p>",
    **fields: Any,
) -> Email:
    account: Account = mailbox.account
    status = (
        EmailStatus.PENDING_SEND_APPROVAL
        if direction == Direction.OUTBOUND
        else EmailStatus.PENDING_INBOUND_APPROVAL
    )
    values: dict[str, Any] = {
        "account": account,
        "mailbox": mailbox,
        "direction": direction,
        "status": status,
        "from_address": mailbox.address
        if direction == Direction.OUTBOUND
        else "someone@outside.example",
        "to": ["client@outside.example"] if direction == Direction.OUTBOUND else [mailbox.address],
        "subject": subject,
        "markdown": "Hello **there**",
        "html": html,
        "text": "Hello there",
        "thread_id": new_id(),
    }
    values.update(fields)
    return Email.objects.create(**values)


def pending_account(slug: str) -> tuple[Account, str]:
    """An account waiting for its activation code, and that code."""
    account = Account.objects.create(
        name=f"{slug.title()} Org",
        slug=slug,
        oversight_email=f"ops@{slug}.example",
        state=AccountState.PENDING,
    )
    Mailbox.objects.create(
        account=account, address=f"agent@{slug}.multimail.localhost", oversight_mode="gated_send"
    )
    _, code = code_issue(account=account, purpose=CodePurpose.ACTIVATION, ttl=timedelta(hours=1))
    return account, code
