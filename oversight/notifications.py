"""Sending the operator's notifications (``OperatorNotification``) until they go out.

A notification is sent by a mail task once the transaction that stored it commits (the
lifecycle enqueues it); if the mailer fails, it stays ``pending`` with a later
``next_attempt_at`` and the beat sweep tries again (1, 2, 4, ... minutes), up to
``MAX_ATTEMPTS``; then it is ``failed``. Either way the console shows the operator that the
email did not reach them. The task only calls ``notification_attempt``; nothing here
imports the pipelines or their tasks.

An approval request is only sent while it still means something: its email is still held
and its link still works. Otherwise it is ``skipped``.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.services import operator_email_deliver
from mailboxes.models import Direction
from multimail.backoff import backoff_delay
from oversight.facts import decision_facts
from oversight.models import ApprovalLink, OperatorNotification
from oversight.policy import PENDING_STATUSES
from oversight.selectors import token_hash

logger = logging.getLogger("multimail.oversight")

# 1, 2, 4, ... minutes, capped at an hour: 12 attempts span about six hours.
MAX_ATTEMPTS = 12
BASE_DELAY_SECONDS = 60
MAX_DELAY_SECONDS = 3600
# A claimed notification is not picked up again for this long (longer than one attempt), so
# the on-commit task and the beat sweep never send the same attempt twice.
CLAIM_LEASE = timedelta(minutes=2)
Status = OperatorNotification.Status
Kind = OperatorNotification.Kind


def notifications_due(*, limit: int = 500) -> list[str]:
    return list(
        OperatorNotification.objects.filter(
            status=Status.PENDING, next_attempt_at__lte=timezone.now()
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def approval_url(token: str) -> str:
    return f"{settings.PUBLIC_BASE_URL}/v1/approve/{token}"


def _console_email_url(notification: OperatorNotification) -> str:
    email = notification.email
    path = reverse("console-email", args=[email.mailbox_id, email.pk])
    return f"{settings.PUBLIC_BASE_URL}{path}"


def _still_wanted(notification: OperatorNotification, now: datetime) -> bool:
    if notification.kind == Kind.SEND_FAILED:
        return True
    if notification.kind == Kind.EXPIRY_REMINDER:
        return notification.email.status in PENDING_STATUSES
    link = notification.link
    return (
        link is not None
        and link.is_usable(now=now)
        and notification.email.status in PENDING_STATUSES
    )


def _render(notification: OperatorNotification) -> tuple[str, str]:
    """The text and HTML bodies. An approval request gets a fresh token, written before the
    email leaves: a token from an attempt that failed stops working."""
    email = notification.email
    context: dict[str, Any] = {
        "email": email,
        "mailbox": email.mailbox,
        "outbound": email.direction == Direction.OUTBOUND,
        "body": email.text or email.markdown,
        "facts": decision_facts(email=email),
        "changed": notification.changed,
        "console_url": _console_email_url(notification),
    }
    if notification.kind == Kind.SEND_FAILED:
        text = render_to_string("oversight/email/send_failed.txt", context)
        return text, ""
    if notification.kind == Kind.EXPIRY_REMINDER:
        # No new link: the first one still works, and the console needs none.
        hours = email.account.approval_expiry_hours
        context.update(
            {"hours": hours, "expires_at": email.status_changed_at + timedelta(hours=hours)}
        )
        return render_to_string("oversight/email/expiry_reminder.txt", context), ""
    link = notification.link
    assert link is not None  # approval notifications always carry one (_still_wanted)
    token = secrets.token_urlsafe(32)
    ApprovalLink.objects.filter(pk=link.pk).update(token_hash=token_hash(token))
    context.update({"approval_url": approval_url(token), "expires_at": link.expires_at})
    return (
        render_to_string("oversight/email/approval_request.txt", context),
        render_to_string("oversight/email/approval_request.html", context),
    )


def notification_attempt(*, notification_id: str) -> None:
    """One attempt at one notification. Safe to call twice: the claim lets one caller in."""
    now = timezone.now()
    claimed = OperatorNotification.objects.filter(
        pk=notification_id, status=Status.PENDING, next_attempt_at__lte=now
    ).update(next_attempt_at=now + CLAIM_LEASE)
    if not claimed:
        return
    notification = OperatorNotification.objects.select_related(
        "email__mailbox", "email__account", "email__sent_by_key", "link"
    ).get(pk=notification_id)
    if not _still_wanted(notification, now):
        OperatorNotification.objects.filter(pk=notification.pk).update(status=Status.SKIPPED)
        return
    # The account's address now: a retry reaches an address the operator corrected since.
    recipient = notification.email.account.oversight_email
    error = ""
    try:
        text, html = _render(notification)
        operator_email_deliver(
            to=[recipient], subject=notification.subject, text=text, html=html or None
        )
    except Exception as exc:  # whatever the mailer or a template raised
        error = f"{type(exc).__name__}: {exc}"
        logger.warning("operator_notification_failed id=%s error=%s", notification_id, error)
    _record_attempt(notification, recipient=recipient, error=error)


def _record_attempt(notification: OperatorNotification, *, recipient: str, error: str) -> None:
    now = timezone.now()
    attempts = notification.attempts + 1
    fields: dict[str, Any] = {
        "attempts": attempts,
        "last_error": error[:500],
        "recipient": recipient,
    }
    if not error:
        fields["status"], fields["sent_at"] = Status.SENT, now
    elif attempts >= MAX_ATTEMPTS:
        fields["status"] = Status.FAILED
    else:
        fields["next_attempt_at"] = now + backoff_delay(
            attempts, base_seconds=BASE_DELAY_SECONDS, max_seconds=MAX_DELAY_SECONDS
        )
    OperatorNotification.objects.filter(pk=notification.pk).update(**fields)
