"""Editing a scheduled email before it leaves (PATCH .../schedule)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts.actors import Actor
from mailboxes.models import Direction, Email, EmailStatus, GateTiming
from mailboxes.quotas import storage_add
from mailboxes.services.mailboxes import mailbox_get
from mailboxes.services.outbound.accept import content_hash, suppressed_recipients
from mailboxes.services.outbound.pipeline import SCANNED_FIELDS, content_scan
from multimail.errors import ApiError, not_found

CONTENT_FIELDS = ("to", "cc", "bcc", "subject", "markdown")


@transaction.atomic
def email_schedule_update(
    *, actor: Actor, mailbox_id: str, email_id: str, changes: dict[str, Any]
) -> Email:
    """Edit a scheduled email (or a gate_first one still waiting for approval). New content
    is scanned again; approved content is frozen, only its send_at may move."""
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
    content = {name: changes[name] for name in CONTENT_FIELDS if name in changes}
    if content and email.approved_at is not None:
        raise ApiError(
            "conflict",
            "The operator already approved this email's recipients and content; only send_at "
            "can change. Cancel it and send a new one to change the content.",
        )
    fields: dict[str, Any] = {}
    if "send_at" in changes:
        fields["send_at"] = changes["send_at"]
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
        fields.update(content)
        fields["content_hash"] = content_hash(
            to=recipients["to"],
            cc=recipients["cc"],
            bcc=recipients["bcc"],
            subject=content.get("subject", email.subject),
            markdown=content.get("markdown", email.markdown),
        )
        stored_before = email.size_bytes
        for name, value in fields.items():
            setattr(email, name, value)
        # Scanned again now: refused content leaves the scheduled email as it was, and the
        # agent can correct it. The status stays: a held email stays in front of the
        # operator, who sees (and approves) the current content on the approval page.
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
        return email
    if fields:
        Email.objects.filter(pk=email.pk).update(**fields)
        for name, value in fields.items():
            setattr(email, name, value)
    return email
