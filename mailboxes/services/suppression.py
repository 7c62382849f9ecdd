"""The suppression list: addresses this account must not send to.

Entries come from hard bounces and spam complaints (delivery events), unsubscribe links
and the operator. Hard bounces are permanent: the address does not exist, and sending to
it again would only hurt the sender's reputation.
"""

from __future__ import annotations

from django.db import transaction

from accounts.actors import Actor
from accounts.services import audit_record
from mailboxes.models import Mailbox, Suppression
from multimail.addresses import address_problem
from multimail.errors import ApiError, not_found

# A stronger reason replaces a weaker one for an address already listed.
_STRENGTH = {
    Suppression.Reason.SOFT_BOUNCE: 0,
    Suppression.Reason.MANUAL: 1,
    Suppression.Reason.UNSUBSCRIBE: 2,
    Suppression.Reason.COMPLAINT: 3,
    Suppression.Reason.HARD_BOUNCE: 4,
}


@transaction.atomic
def suppression_add(
    *, mailbox: Mailbox | None, account_id: str, address: str, reason: Suppression.Reason
) -> Suppression:
    address = address.strip().lower()
    entry, created = Suppression.objects.select_for_update().get_or_create(
        account_id=account_id,
        email_address=address,
        defaults={"reason": reason, "mailbox": mailbox},
    )
    if not created and _STRENGTH.get(reason, 0) > _STRENGTH.get(entry.reason, 0):  # type: ignore[call-overload]
        entry.reason = reason
        entry.save(update_fields=["reason"])
    return entry


# What an operator may record by hand: bounces are the receiving server's word, never theirs.
OPERATOR_REASONS = (
    Suppression.Reason.MANUAL,
    Suppression.Reason.UNSUBSCRIBE,
    Suppression.Reason.COMPLAINT,
)


@transaction.atomic
def suppression_add_by_operator(
    *, actor: Actor, address: str, reason: str, note: str = "", request_id: str = ""
) -> Suppression:
    """The operator stops mail to an address (an unsubscribe by phone, a complaint by
    letter). A weaker reason already listed is raised; a stronger one is kept."""
    address = address.strip()
    if problem := address_problem(address):
        raise ApiError("invalid_parameter", f"{address!r} {problem}", param="address")
    if reason not in OPERATOR_REASONS:
        raise ApiError(
            "invalid_parameter",
            f"Unknown reason {reason!r}. Use any of: {', '.join(OPERATOR_REASONS)}.",
            param="reason",
        )
    entry = suppression_add(
        mailbox=None,
        account_id=actor.account.pk,
        address=address,
        reason=Suppression.Reason(reason),
    )
    metadata = {"reason": entry.reason}
    if note.strip():
        metadata["note"] = note.strip()[:500]
    audit_record(
        actor=actor,
        action="suppression.added",
        resource_type="suppression",
        resource_id=entry.email_address,
        metadata=metadata,
        request_id=request_id,
    )
    return entry


@transaction.atomic
def suppression_remove(*, actor: Actor, address: str, request_id: str = "") -> None:
    entry = (
        Suppression.objects.select_for_update()
        .filter(account=actor.account, email_address__iexact=address.strip())
        .first()
    )
    if entry is None:
        raise not_found("suppression", f"{address} is not on this account's suppression list.")
    if entry.reason == Suppression.Reason.HARD_BOUNCE:
        raise ApiError(
            "suppression_permanent",
            f"{entry.email_address} hard-bounced: the address does not accept mail, so its "
            "suppression cannot be removed. Use a different, valid address.",
        )
    entry.delete()
    audit_record(
        actor=actor,
        action="suppression.removed",
        resource_type="suppression",
        resource_id=entry.email_address,
        metadata={"reason": entry.reason},
        request_id=request_id,
    )
