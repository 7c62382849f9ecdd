"""The precompiled UPDATEs (multimail.statements.CompiledUpdate) do what the ORM does.

The scan's compare-and-set, a delivery's claim, every move of a loaded email (to sending
with the delivery claim, to sent under it, ...), the daily usage counter, the send
counters' slot claim and the stored-bytes counter run SQL compiled once per process. Over
generated mail and values (every status, a claim that matches or not, SET values that are
None, datetimes, JSON, F() expressions with integer literals, integer bounds inside and
beyond their column's range), each statement is the very one the ORM sends, updates the
same rows and leaves every row as the ORM's update leaves it. Shapes it cannot compile
soundly are refused rather than compiled with a value baked in.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.models import Case, F, IntegerField, Model, QuerySet, Value, When
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.models import UsageDaily, UsageEventType
from billing.usage import _USAGE_ROW
from mailboxes.lifecycle import _LOADED_MOVE
from mailboxes.models import (
    AccountSendCount,
    Attachment,
    Direction,
    Email,
    EmailStatus,
    MailboxSendCount,
)
from mailboxes.quotas import _SLOT_FREE
from mailboxes.services.outbound.pipeline import _CLAIMED, _SCANNED
from multimail.statements import CompiledUpdate, _literals_out, _set_shape
from oversight.holds import _UNUSED_LINKS
from oversight.models import ApprovalLink
from tests.conftest import Tenant
from tests.core.test_compiled_queries import _mailboxes
from tests.inbound.conftest import make_email

pytestmark = pytest.mark.django_db

_HYPOTHESIS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
_CLAIM = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
_times = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
)
_texts = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12)


def _both(
    compiled: CompiledUpdate[Any], model: type[Model], fields: dict[str, Any], **values: Any
) -> None:
    """The ORM's update and the compiled one, each rolled back: the same SQL sent, the same
    count, the same rows afterwards."""

    def run(update: Any) -> tuple[int, list[str], list[dict[str, Any]]]:
        with transaction.atomic():
            with CaptureQueriesContext(connection) as captured:
                count = update()
            rows = list(model._default_manager.order_by("pk").values())
            transaction.set_rollback(True)
        # No statement at all where the ORM decides a condition itself (a bound beyond
        # its column's range).
        return count, [query["sql"] for query in captured], rows

    queryset: QuerySet[Any] = compiled.queryset(**values)
    assert run(lambda: compiled.update(fields, **values)) == run(lambda: queryset.update(**fields))


@_HYPOTHESIS
@given(
    emails=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=3),  # which mailbox (see _mailboxes)
            st.sampled_from(Direction.values),
            st.sampled_from(EmailStatus.values),
            st.booleans(),  # claimed at _CLAIM
        ),
        min_size=1,
        max_size=5,
    ),
    leaving=st.lists(st.sampled_from(EmailStatus.values), min_size=1, max_size=3, unique=True),
    claim=st.sampled_from(["none", "same", "other"]),
    at=_times,
    reason=_texts,
    written=st.sampled_from(["sent", "routed", "cleared", "held"]),
)
def test_a_loaded_emails_move_is_the_orms(
    owner: Tenant,
    other: Tenant,
    emails: list[Any],
    leaving: list[str],
    claim: str,
    at: datetime,
    reason: str,
    written: str,
) -> None:
    fields: dict[str, Any] = {
        "sent": {
            "sent_at": at,
            "provider_message_id": reason,
            "send_attempts": F("send_attempts") + 1,
            "delivery_claimed_at": None,
        },
        "routed": {"decided_by": "mode", "decided_rule": reason, "decided_at": at},
        "cleared": {"approved_at": None, "approved_by": None, "send_attempts": 0},
        "held": {"hold_reason": reason, "failure_reason": reason[:3]},
    }[written]
    claimed_at = {"none": None, "same": _CLAIM, "other": _CLAIM + timedelta(microseconds=1)}
    with transaction.atomic():
        mailboxes = _mailboxes(owner, other)
        made = [
            make_email(
                mailboxes[box],
                direction=direction,
                status=status,
                delivery_claimed_at=_CLAIM if claimed else None,
            )
            for box, direction, status, claimed in emails
        ]
        for email_id in [*(e.pk for e in made), "01NOSUCHEMAIL0000000000000"]:
            _both(
                _LOADED_MOVE,
                Email,
                {"status": EmailStatus.SENT, "status_changed_at": at, **fields},
                email_id=email_id,
                leaving=tuple(leaving),
                claimed_at=claimed_at[claim],
            )
        transaction.set_rollback(True)


@_HYPOTHESIS
@given(
    statuses=st.lists(st.sampled_from(EmailStatus.values), min_size=1, max_size=4),
    html=_texts,
    size=st.integers(min_value=0, max_value=2**40),
    score=st.one_of(st.none(), st.integers(min_value=-100, max_value=100)),
    reasons=st.lists(_texts, max_size=3),
)
def test_the_scans_compare_and_set_is_the_orms(
    owner: Tenant,
    statuses: list[str],
    html: str,
    size: int,
    score: int | None,
    reasons: list[str],
) -> None:
    fields = {
        "html": html,
        "text": html[::-1],
        "size_bytes": size,
        "spam_score": score,
        "spam_verdict": "clean",
        "spam_reasons": reasons,
        "content_findings": [{"finding": reason} for reason in reasons],
    }
    with transaction.atomic():
        made = [
            make_email(owner.mailbox, direction=Direction.OUTBOUND, status=status)
            for status in statuses
        ]
        for email in made:
            _both(_SCANNED, Email, fields, email_id=email.pk)
        transaction.set_rollback(True)


@_HYPOTHESIS
@given(
    emails=st.lists(
        st.tuples(st.sampled_from(EmailStatus.values), st.sampled_from(["none", "same", "other"])),
        min_size=1,
        max_size=5,
    ),
    previous=st.sampled_from(["none", "same", "other"]),
    now=_times,
)
def test_a_deliverys_claim_is_the_orms(
    owner: Tenant, emails: list[Any], previous: str, now: datetime
) -> None:
    claims = {"none": None, "same": _CLAIM, "other": _CLAIM - timedelta(minutes=5)}
    with transaction.atomic():
        made = [
            make_email(
                owner.mailbox,
                direction=Direction.OUTBOUND,
                status=status,
                delivery_claimed_at=claims[claim],
            )
            for status, claim in emails
        ]
        for email in made:
            _both(
                _CLAIMED,
                Email,
                {"delivery_claimed_at": now},
                email_id=email.pk,
                previous=claims[previous],
            )
        transaction.set_rollback(True)


@_HYPOTHESIS
@given(
    links=st.lists(
        st.tuples(st.booleans(), st.one_of(st.none(), _times)),  # which email, used_at
        max_size=5,
    ),
    now=_times,
)
def test_spending_an_emails_approval_links_is_the_orms(
    owner: Tenant, links: list[Any], now: datetime
) -> None:
    with transaction.atomic():
        emails = [make_email(owner.mailbox), make_email(owner.mailbox)]
        for index, (second, used_at) in enumerate(links):
            ApprovalLink.objects.create(
                email=emails[second],
                token_hash=f"{index:064}",
                expires_at=now + timedelta(days=7),
                used_at=used_at,
            )
        for email in emails:
            _both(_UNUSED_LINKS, ApprovalLink, {"used_at": now}, email_id=email.pk)
        transaction.set_rollback(True)


@_HYPOTHESIS
@given(
    rows=st.lists(
        st.tuples(
            st.booleans(),  # the owner's account, or the other's
            st.dates(min_value=date(2025, 12, 30), max_value=date(2026, 1, 2)),
            st.sampled_from(UsageEventType.values),
        ),
        max_size=5,
        unique=True,
    ),
    day=st.dates(min_value=date(2025, 12, 30), max_value=date(2026, 1, 2)),
    event_type=st.sampled_from(UsageEventType.values),
    count=st.integers(min_value=1, max_value=10**6),
)
def test_the_usage_counters_increment_is_the_orms(
    owner: Tenant, other: Tenant, rows: list[Any], day: date, event_type: str, count: int
) -> None:
    with transaction.atomic():
        for owners, on, kind in rows:
            account = owner.account if owners else other.account
            UsageDaily.objects.create(account=account, date=on, event_type=kind, count=3)
        for account in (owner.account, other.account):
            _both(
                _USAGE_ROW,
                UsageDaily,
                {"count": F("count") + count},
                account_id=account.pk,
                day=day,
                event_type=UsageEventType(event_type),
            )
        transaction.set_rollback(True)


# Integers around the edges of a BigIntegerField's range, and beyond them, where the ORM
# sends no comparison at all.
_BIG = 2**63
_bounds = st.one_of(
    st.integers(min_value=-3, max_value=12),
    st.integers(min_value=_BIG - 3, max_value=_BIG + 2),
    st.integers(min_value=-_BIG - 2, max_value=-_BIG + 2),
)


@_HYPOTHESIS
@given(
    counters=st.lists(
        st.tuples(st.integers(min_value=0, max_value=10), st.booleans()),  # used, counts since
        min_size=2,
        max_size=2,
    ),
    below=_bounds,
    since_matches=st.booleans(),
    mailboxes=st.booleans(),
)
def test_a_send_counters_slot_claim_is_the_orms(
    owner: Tenant,
    other: Tenant,
    counters: list[Any],
    below: int,
    since_matches: bool,
    mailboxes: bool,
) -> None:
    since = _CLAIM if since_matches else _CLAIM - timedelta(days=30)
    model: Any = MailboxSendCount if mailboxes else AccountSendCount
    owner_field = "mailbox_id" if mailboxes else "account_id"
    with transaction.atomic():
        owners = [
            tenant.mailbox.pk if mailboxes else tenant.account.pk for tenant in (owner, other)
        ]
        for owner_id, (used, counts_since) in zip(owners, counters, strict=True):
            model.objects.update_or_create(
                **{owner_field: owner_id},
                defaults={"used": used, "since": _CLAIM if counts_since else since},
            )
        for owner_id in owners:
            _both(
                _SLOT_FREE,
                model,
                {"used": F("used") + 1},
                counter=model,
                owner_field=owner_field,
                owner_id=owner_id,
                since=since,
                below=below,
            )
        transaction.set_rollback(True)


@_HYPOTHESIS
@given(
    expression=st.sampled_from(["sum", "product", "case"]),
    # The counter stays positive (its column's constraint) from 5000.
    first=st.integers(min_value=-1000, max_value=1000),
    second=st.integers(min_value=0, max_value=1000),
)
def test_the_integer_literals_of_a_set_expression_are_parameters(
    owner: Tenant, expression: str, first: int, second: int
) -> None:
    """Every literal of these expressions is a parameter: the statement is the ORM's for
    any of them, and each expression compiles once whatever its literals."""
    fields = {
        "sum": {"count": F("count") + first + second},
        "product": {"count": F("count") * abs(first) + second},
        "case": {
            "count": Case(When(count__gt=0, then=F("count") + Value(first)), default=Value(second))
        },
    }[expression]
    counter = CompiledUpdate(
        lambda account_id: UsageDaily.objects.filter(account_id=account_id),
        params=("account_id",),
    )
    with transaction.atomic():
        UsageDaily.objects.create(
            account=owner.account, date=date(2026, 1, 1), event_type="email_sent", count=5000
        )
        _both(counter, UsageDaily, fields, account_id=owner.account.pk)
        _both(counter, UsageDaily, {"count": fields["count"] + 1}, account_id=owner.account.pk)
        transaction.set_rollback(True)
    assert len(counter._cache) == 2


def test_each_shape_compiles_once_and_runs_as_one_statement(owner: Tenant) -> None:
    email = make_email(owner.mailbox, direction=Direction.OUTBOUND, status=EmailStatus.SENDING)
    move = CompiledUpdate(_LOADED_MOVE.queryset, params=("email_id", "claimed_at"))
    for attempt in range(3):
        with CaptureQueriesContext(connection) as captured:
            moved = move.update(
                {"send_attempts": F("send_attempts") + 1, "decided_at": datetime.now(UTC)},
                email_id=email.pk,
                leaving=(EmailStatus.SENDING,),
                claimed_at=None,
            )
        assert (moved, len(captured)) == (1, 1)
        assert Email.objects.get(pk=email.pk).send_attempts == attempt + 1
    assert len(move._cache) == 1


def test_a_value_the_sql_would_not_get_as_passed_is_refused(owner: Tenant) -> None:
    """Compiling these with the placeholder would send the placeholder (or a value prepared
    otherwise than the ORM prepares it): refused, where baking the value in would be wrong."""
    now = datetime.now(UTC)
    refused: list[tuple[CompiledUpdate[Any], dict[str, Any], dict[str, Any]]] = [
        # A datetime compared other than with =.
        (
            CompiledUpdate(
                lambda *, after: Email.objects.filter(status_changed_at__gt=after),
                params=("after",),
            ),
            {"subject": "x"},
            {"after": now},
        ),
        # A datetime its field turns into something else (a date).
        (
            CompiledUpdate(lambda *, day: UsageDaily.objects.filter(date=day), params=("day",)),
            {"count": 1},
            {"day": now},
        ),
        # An integer compared through a transform.
        (
            CompiledUpdate(
                lambda *, year: Email.objects.filter(received_at__year=year), params=("year",)
            ),
            {"subject": "x"},
            {"year": 2026},
        ),
        # An integer compared with a column twice.
        (
            CompiledUpdate(
                lambda *, size: Email.objects.filter(size_bytes__gte=size, spam_score=size),
                params=("size",),
            ),
            {"subject": "x"},
            {"size": 3},
        ),
        # A LIKE pattern.
        (
            CompiledUpdate(
                lambda *, text: Email.objects.filter(subject__icontains=text), params=("text",)
            ),
            {"subject": "x"},
            {"text": "hello"},
        ),
    ]
    for compiled, fields, values in refused:
        with pytest.raises(ValueError):
            compiled.update(fields, **values)
    # A field that writes its value through a placeholder of its own.
    content = CompiledUpdate(lambda *, pk: Attachment.objects.filter(pk=pk), params=("pk",))
    with pytest.raises(ValueError, match="placeholder of its own"):
        content.update({"content": b"bytes"}, pk="01NOSUCHATTACHMENT00000000")


_integer = st.integers(min_value=-(2**40), max_value=2**40)
_leaf = st.one_of(
    st.sampled_from(["count", "used"]).map(F),
    _integer.map(Value),
    # An output field of its own, and a Value around a bool: both part of the shape.
    _integer.map(lambda n: Value(n, output_field=IntegerField())),
    st.booleans().map(Value),
)
_arithmetic = st.recursive(
    _leaf,
    lambda inner: st.tuples(inner, st.sampled_from(["+", "-", "*"]), inner).map(
        lambda parts: {"+": parts[0] + parts[2], "-": parts[0] - parts[2]}.get(
            parts[1], parts[0] * parts[2]
        )
    ),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(first=_arithmetic, second=_arithmetic)
def test_a_set_expressions_cheap_key_keys_what_it_compiles_to(first: Any, second: Any) -> None:
    """The key of a SET expression (``_set_shape``) takes out the literals
    ``_literals_out`` takes out, in its order; and two expressions with one key compile
    to one statement (their ``_literals_out`` expressions are equal)."""
    keys, slotted = [], []
    for expression in (first, second):
        literals: list[int] = []
        reference: list[int] = []
        keys.append(_set_shape(expression, literals))
        slotted.append(_literals_out(expression, reference))
        assert literals == reference
    if keys[0] == keys[1]:
        assert slotted[0] == slotted[1]
