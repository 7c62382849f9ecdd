"""Telling the operator about a held email, a held email that changed, or a failed one.

The oversight entry points the mail pipelines reach, through ``mailboxes.lifecycle``
(``email_hold``, ``email_held_changed``, ``email_fail``), which writes the status and
emits the event. Each stores an ``OperatorNotification`` (and for a held email the hosted
approval link it carries) in the caller's transaction and returns its id; the lifecycle
has it sent once that transaction commits (``oversight.notifications`` sends it, and
retries it until it goes out). This module imports nothing from the pipelines, so
announcing mail adds no import cycle between the mailboxes and oversight apps.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.db.models import QuerySet

from mailboxes.models import Direction, Email
from multimail.statements import CompiledUpdate
from oversight.models import ApprovalLink, OperatorNotification
from oversight.selectors import token_hash

APPROVAL_LINK_TTL = timedelta(days=7)
Kind = OperatorNotification.Kind


def _live_links(email: Email, now: datetime) -> QuerySet[ApprovalLink]:
    return ApprovalLink.objects.filter(
        email=email, used_at__isnull=True, replaced_at__isnull=True, expires_at__gt=now
    )


# The unused links of an email: every decision spends them, so compiled once per process.
_UNUSED_LINKS = CompiledUpdate(
    lambda email_id: ApprovalLink.objects.filter(email_id=email_id, used_at__isnull=True),
    params=("email_id",),
)


def approval_links_spend(*, email_id: str, now: datetime) -> None:
    """Once a held email is decided, by whatever path, its emailed links stop working."""
    _UNUSED_LINKS.update({"used_at": now}, email_id=email_id)


def _subject(email: Email, kind: str, changed: Sequence[str]) -> str:
    shown = " ".join((email.subject or "(no subject)").split())
    direction = "Outbound" if email.direction == Direction.OUTBOUND else "Inbound"
    if kind == Kind.SEND_FAILED:
        return f"Not sent: {shown}"
    if kind == Kind.EXPIRY_REMINDER:
        return f"Reminder: {direction.lower()} email expires unless you decide: {shown}"
    if kind == Kind.EMAIL_CHANGED:
        return f"Changed ({', '.join(changed)}), waiting for approval again: {shown}"
    return f"{direction} email waiting for approval: {shown}"


def _notify(
    email: Email,
    *,
    kind: str,
    now: datetime,
    link: ApprovalLink | None = None,
    changed: Sequence[str] = (),
) -> str:
    notification = OperatorNotification.objects.create(
        account_id=email.account_id,
        email=email,
        kind=kind,
        link=link,
        changed=list(changed),
        subject=_subject(email, kind, changed),
        recipient=email.account.oversight_email,
        created_at=now,
        next_attempt_at=now,
    )
    return notification.pk


def _new_link(email: Email, now: datetime) -> ApprovalLink:
    # The token the operator gets is made when the notification is sent; until then the
    # link answers to a token nobody has.
    return ApprovalLink.objects.create(
        email=email,
        token_hash=token_hash(secrets.token_urlsafe(32)),
        created_at=now,
        expires_at=now + APPROVAL_LINK_TTL,
    )


def hold_announce(*, email: Email, now: datetime) -> str | None:
    """Create the hosted approval link and the operator's notification with the full content
    and the link; its id, for the caller to send.

    None, and nothing to send, when the email already has a working link: held again (a
    re-scan, the sweep), it is already in front of the operator. The caller holds the
    email's row lock, so two holds of one email cannot both create a link.
    """
    if _live_links(email, now).exists():
        return None
    return _notify(email, kind=Kind.APPROVAL_REQUEST, now=now, link=_new_link(email, now))


def hold_reannounce(*, email: Email, changed: Sequence[str], now: datetime) -> str:
    """A held email changed (``changed``: the labels of what did): the operator is told
    again, with a new link, and every earlier link stops deciding (its page names the new
    notification). Notifications of the earlier content not yet sent are dropped."""
    link = _new_link(email, now)
    _live_links(email, now).exclude(pk=link.pk).update(replaced_at=now, replaced_by=link)
    OperatorNotification.objects.filter(
        email=email,
        kind__in=(Kind.APPROVAL_REQUEST, Kind.EMAIL_CHANGED),
        status=OperatorNotification.Status.PENDING,
    ).update(status=OperatorNotification.Status.SKIPPED)
    return _notify(email, kind=Kind.EMAIL_CHANGED, now=now, link=link, changed=changed)


def failure_announce(*, email: Email, now: datetime) -> str:
    """The operator's notification that an email could not be sent, and why (its
    failure_reason); its id, for the caller to send."""
    return _notify(email, kind=Kind.SEND_FAILED, now=now)


def expiry_remind(*, email: Email, now: datetime) -> str | None:
    """The operator's one reminder that a held email expires unless decided; its id, for
    the caller to send. None when it was reminded already. The caller holds the email's
    row lock (and a unique constraint backs it: one reminder per email)."""
    if OperatorNotification.objects.filter(email=email, kind=Kind.EXPIRY_REMINDER).exists():
        return None
    return _notify(email, kind=Kind.EXPIRY_REMINDER, now=now)
