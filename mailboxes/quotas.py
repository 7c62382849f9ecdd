"""Sending quotas and storage: what an account has used against its plan's limits."""

from __future__ import annotations

from django.db.models import Sum

from accounts.models import Account
from mailboxes.models import Attachment, Direction, Email, EmailStatus

# Outbound emails that count against the monthly quota: everything accepted that was not
# refused before leaving (rejected by the filter or operator, cancelled).
_NOT_COUNTED = (EmailStatus.REJECTED, EmailStatus.CANCELLED)


def emails_sent_this_period(*, account: Account) -> int:
    return (
        Email.objects.filter(
            account=account, direction=Direction.OUTBOUND, received_at__gte=account.period_start
        )
        .exclude(status__in=_NOT_COUNTED)
        .count()
    )


def storage_used_bytes(*, account: Account) -> int:
    bodies = Email.objects.filter(account=account).aggregate(total=Sum("size_bytes"))["total"]
    files = Attachment.objects.filter(email__account=account).aggregate(total=Sum("size"))["total"]
    return int(bodies or 0) + int(files or 0)
