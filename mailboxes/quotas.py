"""Sending quotas and storage: what an account has used against its plan's limits.

The monthly quota and the warm-up caps are counters too (AccountSendCount,
MailboxSendCount): ``send_limits_claim`` takes one slot of each with a conditional UPDATE
(the check and the increment are one statement, so two concurrent sends cannot both take
the last free slot), in the transaction that stores the email, so a refusal or a rollback
later in that transaction gives the slot back. An email that stops counting (rejected or
cancelled) gives its slot back through ``sends_uncount``, called by the lifecycle. A counter
whose period has passed is recounted once, under its row lock, by the first claim of the
new period.

Stored bytes are a counter (StorageUsage), not a sum over the account's mail: every write
that stores or resizes an email or attachment adds its delta with ``storage_add`` in the
same transaction. Emails are deleted only with their account, whose counter row goes with
it (cascade). ``storage_reconcile`` recomputes the counter from the sums.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import connection, transaction
from django.db.models import Count, F, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Account, AccountState, OversightEmailChange
from accounts.plans import Plan, limits_for
from billing.models import Subscription
from billing.periods import current_period, monthly_window, period_anchor
from mailboxes.models import (
    AccountSendCount,
    Attachment,
    Direction,
    Email,
    EmailStatus,
    Mailbox,
    MailboxSendCount,
    StorageUsage,
)
from multimail.errors import ApiError
from multimail.statements import CompiledQuery, CompiledUpdate, hot_cursor

# Outbound emails that count against the monthly quota: everything accepted that was not
# refused before leaving (rejected by the filter or operator, cancelled).
NOT_COUNTED = (EmailStatus.REJECTED, EmailStatus.CANCELLED)

# A new mailbox's daily send cap by day of its life (stage 1 is its first day); from day 8
# only the plan's monthly quota applies.
WARMUP_DAILY_CAPS = (20, 40, 80, 150, 300, 500, 1000)


def counted_sends(**filters: Any) -> QuerySet[Email]:
    """Outbound emails that count against the monthly quota and warm-up caps (``filters``
    narrow them): the send check and the console's counts must agree."""
    return Email.objects.filter(direction=Direction.OUTBOUND, **filters).exclude(
        status__in=NOT_COUNTED
    )


def emails_sent_this_period(*, account: Account) -> int:
    return _sent_since(account, current_period(account)[0])


def _sent_since(account: Account, start: datetime) -> int:
    """The counter when it counts from ``start``; otherwise (a period nobody has sent in
    yet) the rows, which are few then."""
    used = AccountSendCount.objects.filter(account=account, since=start).values_list(
        "used", flat=True
    )
    counted = used.first()
    if counted is not None:
        return counted
    return counted_sends(account=account, received_at__gte=start).count()


# The counters the quotas claim: model, the field naming its owner, and how the owner's
# counted sends are recounted from the rows.
_SendCount = type[AccountSendCount] | type[MailboxSendCount]


# A send counter's row while it counts from ``since`` and has a free slot below ``below``:
# its one-slot claim runs with every send of a mailbox still warming up, and with every
# send where the monthly claim cannot share the storage claim's statement.
_SLOT_FREE = CompiledUpdate(
    lambda counter, owner_field, owner_id, since, below: counter.objects.filter(
        **{owner_field: owner_id}, since=since, used__lt=below
    ),
    params=("owner_id", "since", "below"),
)


def _count_claim(
    model: _SendCount, owner: dict[str, Any], *, since: datetime, limit: int, tried: bool = False
) -> int | None:
    """Take one slot of the ``owner``'s counter, counting from ``since``, if it stays within
    ``limit``: None when taken, else the number already used. The usual case is one
    conditional UPDATE. When it matches nothing (the counter counts from another period,
    is missing, or is full), the row is locked and, if its period is not ``since``,
    recounted from the emails: the lock waits for any transaction giving a slot back, and
    the recount, a statement of its own, sees what that transaction committed. ``tried``:
    the conditional UPDATE already matched nothing (``_claims_together``)."""
    rows = model.objects.filter(**owner)
    ((owner_field, owner_id),) = owner.items()
    if not tried and _SLOT_FREE.update(
        {"used": F("used") + 1},
        counter=model,
        owner_field=owner_field,
        owner_id=owner_id,
        since=since,
        below=limit,
    ):
        return None
    # ON CONFLICT DO NOTHING: two first claims at once cannot fail on each other.
    blank: Any = model(**owner)
    model.objects.bulk_create([blank], ignore_conflicts=True)
    counter = rows.select_for_update().get()
    used = counter.used
    if counter.since != since:
        used = counted_sends(**owner, received_at__gte=since).count()
    if used >= limit:
        if counter.since != since:
            rows.update(since=since, used=used)
        return used
    rows.update(since=since, used=used + 1)
    return None


def sends_uncount(moved: Sequence[tuple[str, str, str]]) -> None:
    """Give back the slots of outbound emails that stopped counting (rejected or
    cancelled), given as (email id, account id, mailbox id): to each counter that counted
    them, that is one counting from before they arrived. Two statements for any number of
    emails; called by the lifecycle in the transaction of the status change."""
    email_ids = [email_id for email_id, _, _ in moved]
    counters: tuple[tuple[_SendCount, str, set[str]], ...] = (
        (AccountSendCount, "account_id", {account_id for _, account_id, _ in moved}),
        (MailboxSendCount, "mailbox_id", {mailbox_id for _, _, mailbox_id in moved}),
    )
    for model, owner, owner_ids in counters:
        counted = (
            Email.objects.filter(
                pk__in=email_ids, received_at__gte=OuterRef("since"), **{owner: OuterRef(owner)}
            )
            .order_by()
            .values(owner)
            .annotate(n=Count("pk"))
            .values("n")
        )
        model.objects.filter(**{f"{owner}__in": owner_ids}).update(
            used=F("used") - Coalesce(Subquery(counted), 0)
        )


@dataclass(frozen=True, slots=True)
class SendingProblem:
    message: str  # one sentence, starting in lower case ("sending is disabled ...")
    # True: even mail the operator approves does not leave. False: new sends are refused
    # (the monthly quota), or a block is coming (an unpaid invoice).
    stops_delivery: bool = True


def account_sending_problems(*, account: Account) -> list[SendingProblem]:
    """Why this account's mail cannot go out now, or soon (empty: nothing stands in the
    way). The console shows them on every page, and after a decision that approved mail
    anyway."""
    problems = []
    if account.state == AccountState.DEACTIVATED:
        reason = f" ({account.deactivated_reason})" if account.deactivated_reason else ""
        problems.append(
            SendingProblem(f"the account is deactivated{reason}: nothing is sent until it is "
                           "reactivated")
        )  # fmt: skip
    elif account.state == AccountState.PENDING:
        problems.append(
            SendingProblem("the account is not activated yet: enter the emailed activation code")
        )
    if account.sending_disabled:
        problems.append(
            SendingProblem(
                "sending is disabled for this account: "
                f"{account.sending_disabled_reason or 'enforcement action'}"
            )
        )
    if account.sending_stopped:
        problems.append(
            SendingProblem(
                "sending is stopped by the operator: every outbound email is held until "
                "sending is resumed"
            )
        )
    # Read only, unlike current_period, which also advances the stored period start: a page
    # view should not write.
    start, end = monthly_window(period_anchor(account), timezone.now())
    quota = limits_for(account.plan).monthly_email_quota
    if _sent_since(account, start) >= quota:
        problems.append(
            SendingProblem(
                f"this account sent its {quota} emails for this month (plan {account.plan}): "
                f"new sends are refused until {end:%Y-%m-%d %H:%M} UTC",
                stops_delivery=False,
            )
        )
    try:
        past_due = account.subscription.past_due_since  # type: ignore[attr-defined]
    except ObjectDoesNotExist:
        past_due = None
    if past_due is not None:
        deadline = past_due + timedelta(days=settings.BILLING_UNPAID_GRACE_DAYS)
        problems.append(
            SendingProblem(
                "a payment failed: the account is deactivated, and stops sending, on "
                f"{deadline:%Y-%m-%d %H:%M} UTC unless the invoice is paid (see Billing)",
                stops_delivery=False,
            )
        )
    return problems


def storage_used_bytes(*, account: Account) -> int:
    used = StorageUsage.objects.filter(account=account).values_list("used_bytes", flat=True)
    return used.first() or 0


@dataclass(frozen=True, slots=True)
class AccountUsage:
    emails_sent_this_period: int
    storage_used_bytes: int
    # The address asked to become the oversight email, not confirmed yet
    # (accounts.selectors.oversight_email_pending).
    pending_oversight_email: str | None


# What GET /v1/account reads besides the account, as one statement of scalar subqueries:
# ``emails_sent_this_period`` (the counter, else the rows: COALESCE evaluates the count
# only when the counter does not count from ``start``), ``storage_used_bytes`` and
# ``oversight_email_pending``. Written out because building and compiling those three
# querysets cost most of that request's CPU; tests/outbound/test_account_usage.py holds it
# equal to them. Portable SQL: it runs on PostgreSQL and on SQLite (embedded mode). One
# placeholder per NOT_COUNTED status.
_ACCOUNT_USAGE_SQL = """
SELECT
    COALESCE(
        (SELECT used FROM mailboxes_accountsendcount WHERE account_id = %s AND since = %s),
        (SELECT COUNT(*) FROM mailboxes_email
         WHERE account_id = %s AND direction = %s AND received_at >= %s
           AND status NOT IN (%s, %s))
    ),
    (SELECT used_bytes FROM mailboxes_storageusage WHERE account_id = %s),
    (SELECT new_email FROM accounts_oversightemailchange
     WHERE account_id = %s AND status = %s AND confirm_expires_at > %s
     ORDER BY id DESC LIMIT 1)
"""


def account_usage(*, account: Account, now: datetime | None = None) -> AccountUsage:
    """``emails_sent_this_period``, ``storage_used_bytes`` and the pending oversight email
    of ``account``, from one statement (two for a paid plan: its subscription first)."""
    _subscription_load(account)
    start = current_period(account, now=now)[0]
    adapt = connection.ops.adapt_datetimefield_value
    pk = account.pk
    params = [
        *(pk, adapt(start)),
        *(pk, Direction.OUTBOUND.value, adapt(start), *(str(s) for s in NOT_COUNTED)),
        pk,
        *(pk, OversightEmailChange.Status.PENDING.value, adapt(now or timezone.now())),
    ]
    with hot_cursor(connection) as cursor:
        cursor.execute(_ACCOUNT_USAGE_SQL, params)
        sent, stored, pending = cursor.fetchone()
    return AccountUsage(
        emails_sent_this_period=int(sent),
        storage_used_bytes=int(stored or 0),
        pending_oversight_email=pending,
    )


def _storage_increment(
    account_id: str, delta: int, *, limit: int | None = None, tried: bool = False
) -> bool:
    """Add ``delta`` in place (never read-modify-write: concurrent writers keep each
    other's bytes); with ``limit``, only if the total stays within it. The account's row is
    created on its first stored byte. False when the bytes do not fit. ``tried``: the first
    UPDATE already matched nothing (``_claims_together``)."""
    if not tried and _storage_update(account_id, delta, limit=limit):
        return True
    _storage_row_ensure(account_id)
    return _storage_update(account_id, delta, limit=limit)


# The account's stored-bytes counter, and with ``at_most`` only while the bytes it holds
# leave room for the change. Every stored email claims or adds its bytes through it, so it
# is compiled once per process (the change and the bound are parameters).
_STORED_BYTES = CompiledUpdate(
    lambda account_id, at_most=None: StorageUsage.objects.filter(
        account_id=account_id, **({} if at_most is None else {"used_bytes__lte": at_most})
    ),
    params=("account_id", "at_most"),
)


def _storage_update(account_id: str, delta: int, *, limit: int | None) -> bool:
    at_most = None if limit is None else limit - delta
    return bool(
        _STORED_BYTES.update(
            {"used_bytes": F("used_bytes") + delta}, account_id=account_id, at_most=at_most
        )
    )


def _storage_row_ensure(account_id: str) -> None:
    # ON CONFLICT DO NOTHING, so two first writes at once cannot fail on each other.
    StorageUsage.objects.bulk_create([StorageUsage(account_id=account_id)], ignore_conflicts=True)


def storage_add(*, account_id: str, delta: int) -> None:
    """Count ``delta`` bytes (negative: freed) in the account's stored bytes. Call it in
    the transaction that writes them, as late as possible: the row stays locked until
    commit, and after any mailbox or account row lock the transaction takes."""
    if delta:
        _storage_increment(account_id, delta)


def storage_reconcile(*, account_id: str) -> tuple[int, int]:
    """Set the counter to the exact sums of the account's emails and attachments; returns
    (counted, actual). The counter row is locked before summing: a writer that already
    counted its delta has committed by then (its rows are in the sums), and one that has
    not waits for this commit and adds its delta to the corrected figure."""
    with transaction.atomic():
        _storage_row_ensure(account_id)
        counted = (
            StorageUsage.objects.select_for_update()
            .values_list("used_bytes", flat=True)
            .get(account_id=account_id)
        )
        bodies = Email.objects.filter(account_id=account_id).aggregate(total=Sum("size_bytes"))
        files = Attachment.objects.filter(email__account_id=account_id).aggregate(total=Sum("size"))
        actual = int(bodies["total"] or 0) + int(files["total"] or 0)
        if actual != counted:
            StorageUsage.objects.filter(account_id=account_id).update(used_bytes=actual)
    return counted, actual


def _storage_claim(*, account: Account, adding_bytes: int, limit: int, tried: bool = False) -> None:
    """Count the new email's bytes if they fit within ``limit``: the check and the
    increment are one statement."""
    if _storage_increment(account.pk, adding_bytes, limit=limit, tried=tried):
        return
    used_bytes = storage_used_bytes(account=account)
    raise ApiError(
        "storage_quota_exceeded",
        f"Stored mail uses {used_bytes} of {limit} bytes and this email does not fit. "
        "Delete old emails or upgrade the plan.",
        used_bytes=used_bytes,
        limit_bytes=limit,
    )


def warmup_stage(*, mailbox: Mailbox, now: datetime | None = None) -> int | None:
    """Day of the mailbox's life (1 = the day it was created, UTC), or None once warmed up."""
    today = (now or timezone.now()).date()
    stage = (today - mailbox.created_at.date()).days + 1
    return stage if 1 <= stage <= len(WARMUP_DAILY_CAPS) else None


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(int((moment - now).total_seconds()) + 1, 1)


def send_limits_claim(
    *,
    account: Account,
    mailbox: Mailbox,
    adding_bytes: int,
    period: tuple[datetime, datetime],
) -> None:
    """Raise the catalog error for the first limit one more outbound email would break;
    otherwise claim its slot of the monthly quota (and of the warm-up cap) and count its
    ``adding_bytes`` as stored (the caller stores the email in the same transaction, so a
    refusal here or later, or a rollback, counts nothing). ``period`` is the account's
    ``current_period``, read by the caller before it took the row locks."""
    now = timezone.now()
    limits = limits_for(account.plan)

    period_start, period_end = period
    stage = warmup_stage(mailbox=mailbox, now=now)
    # Once warmed up, the usual send takes both slots in one statement; whatever it could
    # not take goes the way below, which then skips the UPDATE already made.
    counted, stored = (
        _claims_together(
            account_id=account.pk,
            since=period_start,
            limit=limits.monthly_email_quota,
            adding_bytes=adding_bytes,
            max_bytes=limits.max_storage_bytes,
        )
        if stage is None and connection.vendor == "postgresql"
        else (None, None)
    )
    if counted and stored:
        return
    used = (
        None
        if counted
        else _count_claim(
            AccountSendCount,
            {"account_id": account.pk},
            since=period_start,
            limit=limits.monthly_email_quota,
            tried=counted is False,
        )
    )
    if used is not None:
        raise ApiError(
            "monthly_quota_exceeded",
            # MultiMail's clients recognise this error by the word "quota" in its message.
            f"This account used its monthly quota of {limits.monthly_email_quota} emails "
            f"(plan {account.plan}). Wait until {period_end.isoformat()} or upgrade the plan "
            "with POST /v1/billing/checkout.",
            headers={"Retry-After": str(_seconds_until(period_end, now))},
            quota=limits.monthly_email_quota,
            used=used,
            resets_at=period_end.isoformat().replace("+00:00", "Z"),
        )

    if stage is not None:
        daily_limit = WARMUP_DAILY_CAPS[stage - 1]
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        daily_sent = _count_claim(
            MailboxSendCount, {"mailbox_id": mailbox.pk}, since=midnight, limit=daily_limit
        )
        if daily_sent is not None:
            tomorrow = midnight + timedelta(days=1)
            raise ApiError(
                "warmup_limit_exceeded",
                f"This mailbox is on day {stage} of its warm-up and may send {daily_limit} "
                "emails today. Wait until midnight UTC (Retry-After); the cap rises each day "
                "for its first 7 days.",
                headers={
                    "Retry-After": str(_seconds_until(tomorrow, now)),
                    "X-Warmup-Stage": str(stage),
                    "X-Warmup-Daily-Limit": str(daily_limit),
                },
                warmup_stage=stage,
                daily_sent=daily_sent,
                daily_limit=daily_limit,
            )

    _storage_claim(
        account=account,
        adding_bytes=adding_bytes,
        limit=limits.max_storage_bytes,
        # Tried only when the count's UPDATE took its slot: a failed one skipped it.
        tried=counted is True,
    )


def _subscription_of(*, account_id: str) -> QuerySet[Subscription]:
    # What the account's reverse one-to-one accessor fetches (its base manager).
    return Subscription._base_manager.filter(account_id=account_id)


_SUBSCRIPTION = CompiledQuery(_subscription_of, params=("account_id",))


def _subscription_load(account: Account) -> None:
    """Cache ``account.subscription``, which ``period_anchor`` reads for a paid plan, the
    way its accessor caches it (None: there is none), read with a precompiled statement:
    compiling the accessor's query cost more CPU than the rest of GET /v1/account's reads.
    Starter counts from the account's creation and reads no subscription."""
    relation = Account._meta.get_field("subscription")
    if account.plan == Plan.STARTER or relation.is_cached(account):
        return
    found = _SUBSCRIPTION.rows(account_id=account.pk)
    subscription = found[0] if found else None
    if subscription is not None:
        relation.field.set_cached_value(subscription, account)
    relation.set_cached_value(account, subscription)


def _claims_together(
    *, account_id: str, since: datetime, limit: int, adding_bytes: int, max_bytes: int
) -> tuple[bool, bool]:
    """The conditional UPDATEs of the monthly quota's counter and of the stored bytes, in
    one statement (PostgreSQL): whether each took its slot. The storage UPDATE runs only
    if the count's did (its one-time filter reads the count's result first, so the rows
    are locked in the usual order, counter then storage); each is the UPDATE
    ``_count_claim`` and ``_storage_increment`` make. Built by the ORM the two cost several
    times the CPU of this one; tests/outbound/test_send_quotas.py holds the outcomes equal."""
    quote = connection.ops.quote_name
    sql = (
        f"WITH counted AS (UPDATE {quote(AccountSendCount._meta.db_table)} "  # noqa: S608 (model names only)
        "SET used = used + 1 WHERE account_id = %s AND since = %s AND used < %s RETURNING 1), "
        f"stored AS (UPDATE {quote(StorageUsage._meta.db_table)} "
        "SET used_bytes = used_bytes + %s WHERE account_id = %s AND used_bytes <= %s "
        "AND EXISTS (SELECT 1 FROM counted) RETURNING 1) "
        "SELECT EXISTS (SELECT 1 FROM counted), EXISTS (SELECT 1 FROM stored)"
    )
    with hot_cursor(connection) as cursor:
        cursor.execute(
            sql, [account_id, since, limit, adding_bytes, account_id, max_bytes - adding_bytes]
        )
        row = cursor.fetchone()
    return bool(row[0]), bool(row[1])
