"""Editing a scheduled email before it leaves (PATCH .../schedule)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts.actors import Actor
from mailboxes import lifecycle
from mailboxes.models import Direction, Email, EmailStatus, GateTiming
from mailboxes.quotas import storage_add
from mailboxes.services.mailboxes import mailbox_get
from mailboxes.services.outbound.accept import content_hash, suppressed_recipients
from mailboxes.services.outbound.pipeline import SCANNED_FIELDS, content_scan
from multimail.errors import ApiError, not_found

CONTENT_FIELDS = ("to", "cc", "bcc", "subject", "markdown")
# How a renewed approval request names what changed.
CHANGE_LABELS = {
    "to": "To",
    "cc": "Cc",
    "bcc": "Bcc",
    "subject": "Subject",
    "markdown": "Body",
    "send_at": "Send time",
}


@transaction.atomic
def email_schedule_update(
    *, actor: Actor, mailbox_id: str, email_id: str, changes: dict[str, Any]
) -> Email:
    """Edit a scheduled email (or a gate_first one still waiting for approval). New content
    is scanned again. A held email stays held and the operator is told again what changed
    (the earlier approval link stops working); an approved email is frozen, send time
    included, because the operator approved it as it was."""
    mailbox = mailbox_get(account=actor.account, mailbox_id=mailbox_id, for_update=True)
    email = (
        Email.objects.select_for_update(of=("self",))
        .select_related("mailbox", "account")
        .filter(mailbox=mailbox, pk=email_id, direction=Direction.OUTBOUND)
        .first()
    )
    if email is None:
        raise not_found("email")
    editable = email.status == EmailStatus.SCHEDULED or (
        email.status == EmailStatus.PENDING_SEND_APPROVAL
        and email.gate_timing == GateTiming.GATE_FIRST
        and email.send_at is not None
        and email.approved_at is None
    )
    if not editable:
        raise ApiError(
            "conflict",
            f"Only scheduled emails can be edited; this one is {email.status}. Cancel it and "
            "send a new one instead.",
        )
    if email.approved_at is not None:
        raise ApiError(
            "conflict",
            "The operator already approved this email as it is, its recipients, content and "
            "send time; nothing of it can change now. Cancel it and send a new one to change "
            "it (a gated mailbox holds that one for approval).",
        )
    fields = {
        name: changes[name]
        for name in (*CONTENT_FIELDS, "send_at")
        if name in changes and changes[name] != getattr(email, name)
    }
    if not fields:
        return email
    content = {name: value for name, value in fields.items() if name in CONTENT_FIELDS}
    stored_before = email.size_bytes
    if content:
        recipients = {
            name: list(content.get(name, getattr(email, name))) for name in ("to", "cc", "bcc")
        }
        suppressed = suppressed_recipients(
            email.account, [*recipients["to"], *recipients["cc"], *recipients["bcc"]]
        )
        if suppressed:
            raise ApiError(
                "recipient_suppressed",
                f"These recipients are on the suppression list: {', '.join(suppressed)}.",
                suppressed=suppressed,
            )
        fields["content_hash"] = content_hash(
            to=recipients["to"],
            cc=recipients["cc"],
            bcc=recipients["bcc"],
            subject=content.get("subject", email.subject),
            markdown=content.get("markdown", email.markdown),
        )
    for name, value in fields.items():
        setattr(email, name, value)
    if content:
        # Scanned again now: refused content leaves the scheduled email as it was (nothing
        # is saved), and the agent can correct it.
        reason = content_scan(email)
        if reason is not None:
            raise ApiError(
                "content_rejected",
                f"The new content was refused by the content filter: {reason}. The scheduled "
                "email is unchanged; correct the content and try again.",
                reason=reason,
            )
        email.save(update_fields=[*fields, *SCANNED_FIELDS])
        storage_add(account_id=email.account_id, delta=email.size_bytes - stored_before)
    else:
        email.save(update_fields=list(fields))
    if email.status == EmailStatus.PENDING_SEND_APPROVAL:
        # In front of the operator: they decide on the new version, told what changed.
        changed = [label for name, label in CHANGE_LABELS.items() if name in fields]
        lifecycle.email_held_changed(email=email, changed=changed)
    return email
