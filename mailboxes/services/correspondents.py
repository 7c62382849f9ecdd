"""Who an account has exchanged mail with: the history behind "first contact".

Sending records the recipients of every sent email, receiving the sender of every stored
email that is not quarantined as spam. The operator deciding on a held email then sees,
for each recipient, whether the account has mailed them or heard from them before.

The rows are written after the sending or receiving transaction commits, in a statement
of their own: an upsert under the account's unique key waits on any concurrent upsert of
the same address, and inside the mail transactions (which hold mailbox and counter locks)
that wait could close a lock cycle. A row missed because the process died right after the
commit only makes an address look new: the operator is warned once more than needed, never
once less.
"""

from __future__ import annotations

from collections.abc import Iterable
from email.utils import getaddresses

from django.db import transaction
from django.utils import timezone

from mailboxes.models import Correspondent
from multimail.inserts import rows_upsert


def normalized_address(value: str) -> str:
    """The bare, lowercase address of ``value`` ("Name <A@B>" or "a@b"), or ""."""
    pairs = getaddresses([value])
    address = pairs[0][1] if pairs else ""
    return address.strip().lower() if "@" in address else ""


def correspondents_record(
    *, account_id: str, direction: str, addresses: Iterable[str], email_id: str
) -> None:
    """Note that ``email_id`` exchanged mail with ``addresses``, once the caller's
    transaction commits (at once outside one)."""
    normalized = sorted({normalized_address(address) for address in addresses} - {""})
    if not normalized:
        return

    def write() -> None:
        now = timezone.now()
        # Sorted: two upserts of overlapping addresses take the key locks in one order.
        rows_upsert(
            [
                Correspondent(
                    account_id=account_id,
                    address=address,
                    direction=direction,
                    first_email_id=email_id,
                    last_email_id=email_id,
                    first_at=now,
                    last_at=now,
                )
                for address in normalized
            ],
            unique_fields=["account", "address", "direction"],
            update_fields=["last_email_id", "last_at"],
        )

    transaction.on_commit(write, robust=True)


def correspondents_new(
    *, account_id: str, addresses: Iterable[str], email_id: str | None = None
) -> set[str]:
    """Of ``addresses``, those this account never exchanged mail with in either direction
    (normalized), in one query. An email is not its own history: a row whose only email is
    ``email_id`` does not count."""
    wanted = {normalized_address(address) for address in addresses} - {""}
    if not wanted:
        return set()
    rows = Correspondent.objects.filter(account_id=account_id, address__in=wanted).values_list(
        "address", "first_email_id", "last_email_id"
    )
    known = {
        address
        for address, first_id, last_id in rows
        if email_id is None or not first_id == last_id == email_id
    }
    return wanted - known
