"""The stored-bytes counter: every write that stores or resizes mail keeps it equal to the
sums of the account's emails and attachments, which it replaces on the send path."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Sum
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Account
from accounts.services import api_key_create
from mailboxes.models import Attachment, Email, EmailStatus, Mailbox, StorageUsage
from mailboxes.quotas import storage_reconcile, storage_used_bytes
from mailboxes.services.inbound.receive import inbound_receive
from tests.conftest import Tenant, assert_error, start_and_join
from tests.inbound.conftest import build_mime
from tests.outbound.conftest import attachment

pytestmark = pytest.mark.django_db

PHISHING = (
    "Your account will be suspended. Verify your password at "
    "[https://bank.example/login](https://evil.example/steal)."
)


def _sums(account: Account) -> int:
    bodies = Email.objects.filter(account=account).aggregate(total=Sum("size_bytes"))["total"]
    files = Attachment.objects.filter(email__account=account).aggregate(total=Sum("size"))
    return int(bodies or 0) + int(files["total"] or 0)


def _counter_is_exact(account: Account) -> int:
    exact = _sums(account)
    assert storage_used_bytes(account=account) == exact
    assert storage_reconcile(account_id=account.pk) == (exact, exact)
    return exact


def test_counter_follows_sends_inbound_renders_and_deletion(
    send: Callable[..., Any],
    sender: APIClient,
    owner: Tenant,
    other: Tenant,
    api: Callable[..., APIClient],
    django_capture_on_commit_callbacks: Any,
) -> None:
    assert storage_used_bytes(account=owner.account) == 0  # no row yet: nothing stored

    # Sends, rendered by the pipeline (size grows by the html and text parts).
    assert send().status_code == 202
    assert send(subject="files", attachments=[attachment(content=b"x" * 1000)]).status_code == 202
    assert send(subject="phish", markdown=PHISHING).status_code == 202  # rejected, still stored
    assert Email.objects.get(subject="phish").status == EmailStatus.REJECTED
    later = (timezone.now() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    scheduled = send(subject="later", send_at=later).json()["id"]
    # Replayed and refused sends store nothing.
    assert send(subject="once", idempotency_key="k1").status_code == 202
    assert send(subject="once", idempotency_key="k1").status_code == 200
    assert_error(send(subject="once"), "duplicate_email")
    # A local recipient: the copy is stored (and counted) in the other account.
    assert send(subject="local", to=[other.mailbox.address]).status_code == 202
    exact = _counter_is_exact(owner.account)
    assert exact > 1000
    received = _counter_is_exact(other.account)
    assert received > 0

    # A scheduled email edited: re-rendered, the counter follows the new size both ways.
    url = f"/v1/mailboxes/{owner.mailbox.pk}/emails/{scheduled}/schedule"
    with django_capture_on_commit_callbacks(execute=True):
        assert (
            sender.patch(url, {"markdown": "**much** longer " * 50}, format="json").status_code
            == 200
        )
    assert _counter_is_exact(owner.account) > exact
    with django_capture_on_commit_callbacks(execute=True):
        assert sender.patch(url, {"markdown": "short"}, format="json").status_code == 200
    before_inbound = _counter_is_exact(owner.account)

    # Inbound with attachments.
    raw = build_mime(
        to=owner.mailbox.address,
        html="<p>Hi <b>agent</b></p>",
        attachments=[("report.pdf", "application/pdf", b"%PDF" + b"0" * 5000)],
    )
    inbound_receive(raw=raw, recipients=[owner.mailbox.address], source="test")
    inbound_receive(raw=raw, recipients=[owner.mailbox.address], source="test")  # duplicate
    assert _counter_is_exact(owner.account) > before_inbound + 5000

    # What the account and usage endpoints show.
    info = api("read").get("/v1/account").json()
    assert info["storage_used_bytes"] == _sums(owner.account)

    # Deleting an account takes its counter with it; the other account's is untouched.
    with django_capture_on_commit_callbacks(execute=True):
        assert api("admin", account=other.account).delete("/v1/account").status_code == 200
    assert not StorageUsage.objects.filter(account_id=other.account.pk).exists()
    _counter_is_exact(owner.account)


def test_reconcile_command_corrects_drift(send: Callable[..., Any], owner: Tenant) -> None:
    assert send().status_code == 202
    exact = _sums(owner.account)
    StorageUsage.objects.filter(account=owner.account).update(used_bytes=7)
    out = StringIO()
    call_command("storage_reconcile", stdout=out)
    assert f"{owner.account.pk}: counted 7, stored {exact}" in out.getvalue()
    assert "1 corrected" in out.getvalue()
    assert storage_used_bytes(account=owner.account) == exact
    out = StringIO()
    call_command("storage_reconcile", "--account", owner.account.pk, stdout=out)
    assert out.getvalue().strip() == "1 accounts checked, 0 corrected."


@pytest.mark.django_db(transaction=True)
def test_concurrent_sends_and_deliveries_keep_the_counter_exact(owner: Tenant) -> None:
    """Sends on one mailbox and inbound mail on another of the same account, at once: the
    in-place increments lose nothing and the lock order holds (no deadlock)."""
    second = Mailbox.objects.create(
        account=owner.account, address="second@acme.multimail.localhost"
    )
    _, key = api_key_create(account=owner.account, name="race", scopes=["send"])
    per_side = 4
    barrier = threading.Barrier(2 * per_side)
    failures: list[str] = []

    def send(n: int) -> None:
        response = Client().post(
            f"/v1/mailboxes/{owner.mailbox.pk}/send",
            data=json.dumps(
                {
                    "to": ["x@example.org"],
                    "subject": f"S{n}",
                    "markdown": "m" * n,
                    "attachments": [attachment(content=b"a" * (100 * n))],
                }
            ),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {key}",
        )
        if response.status_code != 202:
            failures.append(f"send {response.status_code} {response.content!r}")

    def receive(n: int) -> None:
        raw = build_mime(
            to=second.address,
            text="t" * n,
            attachments=[("f.bin", "application/octet-stream", b"b" * (1000 * n))],
        )
        inbound_receive(raw=raw, recipients=[second.address], source="test")

    def run(call: Callable[[int], None], n: int) -> None:
        try:
            barrier.wait(timeout=10)
            call(n)
        except Exception as error:  # reported below, with the other failures
            failures.append(f"{call.__name__}: {error!r}")
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=(call, n))
        for n in range(1, per_side + 1)
        for call in (send, receive)
    ]
    start_and_join(threads, timeout=60)
    assert failures == []
    assert Email.objects.filter(account=owner.account).count() == 2 * per_side
    _counter_is_exact(owner.account)
