"""Telling the operator about a held email: the hosted approval link and the notification.

The one oversight entry point the mail pipelines reach, through
``mailboxes.lifecycle.email_hold``, which puts the email in its held status and emits
``oversight.pending``. It imports nothing from the pipelines, so holding mail adds no
import cycle between the mailboxes and oversight apps.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.template.loader import render_to_string

from accounts.services import operator_email_send
from mailboxes.models import Direction, Email
from oversight.facts import decision_facts
from oversight.models import ApprovalLink
from oversight.selectors import token_hash

APPROVAL_LINK_TTL = timedelta(days=7)


def approval_url(token: str) -> str:
    return f"{settings.PUBLIC_BASE_URL}/v1/approve/{token}"


def hold_announce(*, email: Email, now: datetime) -> bool:
    """Create the hosted approval link and email the operator the full content with it, and
    the decision facts (oversight.facts).

    False, and nothing sent, when the email already has a working link: held again (a
    re-scan, the sweep), it is already in front of the operator. The caller holds the
    email's row lock, so two holds of one email cannot both create a link.
    """
    if ApprovalLink.objects.filter(email=email, used_at__isnull=True, expires_at__gt=now).exists():
        return False
    token = secrets.token_urlsafe(32)
    link = ApprovalLink.objects.create(
        email=email,
        token_hash=token_hash(token),
        created_at=now,
        expires_at=now + APPROVAL_LINK_TTL,
    )
    context = {
        "email": email,
        "mailbox": email.mailbox,
        "outbound": email.direction == Direction.OUTBOUND,
        "body": email.text or email.markdown,
        "facts": decision_facts(email=email),
        "approval_url": approval_url(token),
        "expires_at": link.expires_at,
    }
    kind = "Outbound" if email.direction == Direction.OUTBOUND else "Inbound"
    operator_email_send(
        account=email.account,
        subject=f"{kind} email waiting for approval: {email.subject or '(no subject)'}",
        text=render_to_string("oversight/email/approval_request.txt", context),
        html=render_to_string("oversight/email/approval_request.html", context),
    )
    return True
