"""Reads only the console needs: per-mailbox send counts, deleted mailboxes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count
from django.utils import timezone

from accounts.models import Account
from mailboxes.models import Mailbox
from mailboxes.quotas import WARMUP_DAILY_CAPS, counted_sends, warmup_stage
from multimail.errors import not_found


@dataclass(frozen=True, slots=True)
class MailboxRow:
    mailbox: Mailbox
    sent_today: int
    # None once the mailbox is warmed up: only the monthly quota applies then.
    daily_cap: int | None


def mailbox_rows(*, account: Account, now: datetime | None = None) -> list[MailboxRow]:
    """Active mailboxes with today's sends against their warm-up cap: two queries for any
    number of mailboxes. Counts the way the send check does (mailboxes.quotas)."""
    now = now or timezone.now()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    mailboxes = list(
        Mailbox.objects.filter(account=account, is_active=True).select_related("domain")
    )
    counts = dict(
        counted_sends(account=account, received_at__gte=midnight)
        .values_list("mailbox_id")
        .annotate(total=Count("id"))
        .order_by()
    )
    rows = []
    for mailbox in mailboxes:
        stage = warmup_stage(mailbox=mailbox, now=now)
        rows.append(
            MailboxRow(
                mailbox=mailbox,
                sent_today=counts.get(mailbox.pk, 0),
                daily_cap=WARMUP_DAILY_CAPS[stage - 1] if stage else None,
            )
        )
    return rows


def deleted_mailboxes(*, account: Account) -> list[Mailbox]:
    return list(
        Mailbox.objects.filter(account=account, deleted_at__isnull=False).order_by("-deleted_at")
    )


def operator_mailbox_get(*, account: Account, mailbox_id: str) -> Mailbox:
    """A mailbox of ``account`` for reading in the console, deleted ones included: a soft
    deleted mailbox stops sending and receiving, but its mail stays readable by the
    operator (changes still go through ``mailbox_get``, which refuses deleted ones)."""
    mailbox = Mailbox.objects.filter(account=account, pk=mailbox_id).first()
    if mailbox is None:
        raise not_found("mailbox")
    return mailbox
