"""The stop switch: the operator stops all outbound mail of the account at once.

Stopping only ever tightens, so any key with the admin or oversight scope may do it, with
no code. Resuming loosens: only the operator may, in the console, or a key with the
operator's approval code (the ``sending.resume`` admin action, asked for even when the
account lets keys do admin actions without approval).

Stopping writes one flag on the account row. The mail paths read it where mail would
leave (``oversight.policy.outbound_step`` and the delivery's last check before the
provider): sends are still accepted, and what would leave is held with the reason
"sending stopped by the operator". The row is locked FOR UPDATE here, which waits for a
delivery claiming its email (it holds KEY SHARE on the row until the claim commits); once
the stop commits, it waits for the deliveries claimed before it to finish (they hold no
lock while the provider works): once ``sending_stop`` returns, no more mail of the account
leaves.

Resuming clears the flag and nothing else: mail the stop held stays held, for the
operator to approve (one by one or in a batch) or reject.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from accounts.actors import Actor
from accounts.models import Account
from accounts.principals import principal_versions_bump
from accounts.services import audit_record
from mailboxes.services.outbound.pipeline import deliveries_in_flight_wait


def sending_stop(*, actor: Actor, request_id: str = "") -> Account:
    """Stop the account's outbound mail; a second stop changes nothing."""
    account = _stop_record(actor=actor, request_id=request_id)
    # Inside a caller's transaction the stop is not visible yet, and the deliveries to wait
    # for would wait on this row lock in turn: only a committed stop waits for them.
    if not transaction.get_connection().in_atomic_block:
        deliveries_in_flight_wait(account_id=account.pk)
    return account


@transaction.atomic
def _stop_record(*, actor: Actor, request_id: str) -> Account:
    # FOR UPDATE, not NO KEY UPDATE: the only mode that waits for KEY SHARE holders (a
    # delivery between its last check and its commit).
    account = Account.objects.select_for_update().get(pk=actor.account.pk)
    if not account.sending_stopped:
        account.sending_stopped, account.sending_stopped_at = True, timezone.now()
        account.save(update_fields=["sending_stopped", "sending_stopped_at"])
        principal_versions_bump([account.pk])
        audit_record(
            actor=actor,
            action="account.sending_stopped",
            resource_type="account",
            resource_id=account.pk,
            request_id=request_id,
        )
    actor.account.sending_stopped = account.sending_stopped
    actor.account.sending_stopped_at = account.sending_stopped_at
    return account


@transaction.atomic
def sending_resume(*, actor: Actor, request_id: str = "") -> Account:
    """Let the account's mail leave again (the caller is the operator, or holds their
    code). What the stop held stays held."""
    account = Account.objects.select_for_update().get(pk=actor.account.pk)
    if account.sending_stopped:
        stopped_at = account.sending_stopped_at
        account.sending_stopped, account.sending_stopped_at = False, None
        account.save(update_fields=["sending_stopped", "sending_stopped_at"])
        principal_versions_bump([account.pk])
        audit_record(
            actor=actor,
            action="account.sending_resumed",
            resource_type="account",
            resource_id=account.pk,
            metadata={"stopped_at": stopped_at.isoformat() if stopped_at else None},
            request_id=request_id,
        )
    actor.account.sending_stopped = False
    actor.account.sending_stopped_at = None
    return account
