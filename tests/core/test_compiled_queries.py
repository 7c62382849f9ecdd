"""The precompiled statements (multimail.statements) return what the ORM returns.

``mailbox_email_get`` and the unfiltered page of ``mailbox_email_list`` run SQL compiled
once per process. These tests hold their answers (the instances with every loaded field,
the select_related mailbox, the deferred fields, the page's cursor, which not_found) equal
to the ORM querysets they replaced, over generated mail: several accounts and mailboxes
(one deleted), every direction and status, agent and operator views, limits and cursors.
"""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.models import Exists, Model
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Account
from mailboxes import selectors
from mailboxes.models import Direction, Email, EmailStatus, Mailbox
from mailboxes.selectors import active_mailboxes
from multimail.errors import ApiError, not_found
from multimail.pagination import Page, cursor_paginate
from multimail.statements import CompiledQuery
from tests.conftest import Tenant
from tests.inbound.conftest import make_email

pytestmark = pytest.mark.django_db

_emails = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=3),  # which mailbox (see _mailboxes)
        st.sampled_from(Direction.values),
        st.sampled_from(EmailStatus.values),
    ),
    max_size=7,
)
_HYPOTHESIS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _mailboxes(owner: Tenant, other: Tenant) -> list[Mailbox]:
    """The owner's mailbox, a second one, a deleted one, and the other tenant's."""
    second = Mailbox.objects.create(
        account=owner.account, address="second@acme.multimail.localhost"
    )
    deleted = Mailbox.objects.create(
        account=owner.account,
        address="gone@acme.multimail.localhost",
        is_active=False,
        deleted_at=timezone.now(),
    )
    return [owner.mailbox, second, deleted, other.mailbox]


def _snapshot(obj: Model | None) -> Any:
    """Everything an instance holds: loaded fields, deferred ones, state, related rows."""
    if obj is None:
        return None
    fields = {
        f.attname: obj.__dict__[f.attname]
        for f in obj._meta.concrete_fields
        if f.attname in obj.__dict__
    }
    related = {name: _snapshot(value) for name, value in obj._state.fields_cache.items()}
    return (
        type(obj),
        fields,
        sorted(obj.get_deferred_fields()),
        obj._state.adding,
        obj._state.db,
        related,
    )


def _outcome(function: Any, **kwargs: Any) -> Any:
    try:
        result = function(**kwargs)
    except ApiError as error:
        return ("error", error.code, error.extra)
    if isinstance(result, Page):
        return ("page", [_snapshot(item) for item in result.items], result.next_cursor)
    return ("email", _snapshot(result))


def _orm_email_get(*, account: Account, mailbox_id: str, email_id: str, agent: bool) -> Email:
    """mailbox_email_get as the ORM ran it before it was precompiled."""
    email = (
        selectors._as_seen_by(Email.objects.filter(pk=email_id, mailbox_id=mailbox_id), agent=agent)
        .filter(account=account, mailbox__is_active=True)
        .select_related("mailbox")
        .first()
    )
    if email is None:
        mailbox_missing = not active_mailboxes(account=account).filter(pk=mailbox_id).exists()
        raise not_found("mailbox" if mailbox_missing else "email")
    return email


def _orm_email_list(
    *, account: Account, mailbox_id: str, params: dict[str, str], agent: bool
) -> Page:
    """mailbox_email_list as the ORM ran it before its unfiltered page was precompiled."""
    owned = Email.objects.filter(Exists(active_mailboxes(account=account).filter(pk=mailbox_id)))
    page = selectors._email_page(owned, mailbox_id=mailbox_id, params=params, agent=agent)
    if not page.items and not active_mailboxes(account=account).filter(pk=mailbox_id).exists():
        raise not_found("mailbox")
    return page


@_HYPOTHESIS
@given(emails=_emails)
def test_one_email_is_the_orm_email(owner: Tenant, other: Tenant, emails: list[Any]) -> None:
    with transaction.atomic():
        mailboxes = _mailboxes(owner, other)
        stored = [
            make_email(mailboxes[box], direction=direction, status=status)
            for box, direction, status in emails
        ]
        email_ids = [email.pk for email in stored] + ["00NOSUCHEMAIL"]
        mailbox_ids = [mailbox.pk for mailbox in mailboxes] + ["00NOSUCHMAILBOX"]
        for account in (owner.account, other.account):
            for mailbox_id in mailbox_ids:
                for email_id in email_ids:
                    for agent in (True, False):
                        kwargs = {
                            "account": account,
                            "mailbox_id": mailbox_id,
                            "email_id": email_id,
                            "agent": agent,
                        }
                        assert _outcome(selectors.mailbox_email_get, **kwargs) == _outcome(
                            _orm_email_get, **kwargs
                        )
        transaction.set_rollback(True)


@_HYPOTHESIS
@given(
    emails=_emails,
    limit=st.sampled_from([None, "1", "2", "3", "100"]),
    filters=st.sampled_from([{}, {"direction": "inbound"}, {"status": "unread,read"}]),
)
def test_a_page_is_the_orm_page(
    owner: Tenant,
    other: Tenant,
    emails: list[Any],
    limit: str | None,
    filters: dict[str, str],
) -> None:
    """Every page, cursor after cursor: the precompiled one when no filter is given, the
    ORM's otherwise."""
    with transaction.atomic():
        mailboxes = _mailboxes(owner, other)
        for box, direction, status in emails:
            make_email(mailboxes[box], direction=direction, status=status)
        for account in (owner.account, other.account):
            for mailbox_id in [mailbox.pk for mailbox in mailboxes] + ["00NOSUCHMAILBOX"]:
                for agent in (True, False):
                    params = {**filters, **({"limit": limit} if limit else {})}
                    for _ in range(len(emails) + 1):
                        kwargs = {
                            "account": account,
                            "mailbox_id": mailbox_id,
                            "params": params,
                            "agent": agent,
                        }
                        outcome = _outcome(selectors.mailbox_email_list, **kwargs)
                        assert outcome == _outcome(_orm_email_list, **kwargs)
                        if outcome[0] != "page" or outcome[2] is None:
                            break
                        params = {**params, "cursor": outcome[2]}
        transaction.set_rollback(True)


def test_a_bad_cursor_or_limit_is_refused_as_before(owner: Tenant) -> None:
    for params in ({"cursor": "nonsense"}, {"limit": "0"}, {"limit": "x", "cursor": "bad"}):
        assert _outcome(
            selectors.mailbox_email_list,
            account=owner.account,
            mailbox_id=owner.mailbox.pk,
            params=params,
        ) == _outcome(cursor_paginate, queryset=Email.objects.none(), params=params)


def test_the_precompiled_reads_cost_one_query(owner: Tenant) -> None:
    email = make_email(owner.mailbox)
    account, mailbox_id = owner.account, owner.mailbox.pk
    for _ in range(2):  # compiled on the first call, reused on the second
        with CaptureQueriesContext(connection) as captured:
            got = selectors.mailbox_email_get(
                account=account, mailbox_id=mailbox_id, email_id=email.pk
            )
            page = selectors.mailbox_email_list(account=account, mailbox_id=mailbox_id, params={})
        assert len(captured) == 2
        assert got.mailbox == owner.mailbox
        assert [e.pk for e in page.items] == [email.pk]


def test_a_placeholder_the_sql_transforms_is_refused(owner: Tenant) -> None:
    """A LIKE pattern is not the value passed: compiling it as a placeholder would send the
    placeholder's text. Refused, where baking it in would answer wrong."""
    contains = CompiledQuery(
        lambda *, text: Email.objects.filter(subject__icontains=text), params=("text",)
    )
    with pytest.raises(ValueError, match="transformed"):
        contains.rows(text="hello")


def test_the_compiled_sql_is_the_orms(owner: Tenant) -> None:
    """The statement is the very one the ORM would send: the queryset is its definition."""
    values = {
        "account_id": owner.account.pk,
        "mailbox_id": owner.mailbox.pk,
        "before": "00CURSOR",
        "agent": True,
        "limit": 20,
    }
    with CaptureQueriesContext(connection) as compiled:
        selectors._OWNED_PAGE.rows(**values)
    with CaptureQueriesContext(connection) as orm:
        list(selectors._OWNED_PAGE.queryset(**values))
    assert compiled[0]["sql"] == orm[0]["sql"]


def _ids(emails: list[Email]) -> list[str]:
    return [email.pk for email in emails]


def test_an_array_placeholder_takes_any_number_of_values(owner: Tenant, other: Tenant) -> None:
    """One statement for every length of the array (PostgreSQL's ``= ANY(%s)``), each
    answer the ORM's."""
    in_mailboxes = CompiledQuery(
        lambda *, mailbox_ids: Email.objects.filter(mailbox_id__any_of=mailbox_ids),
        params=(),
        arrays=("mailbox_ids",),
    )
    mailboxes = _mailboxes(owner, other)
    for index, mailbox in enumerate(mailboxes):
        for _ in range(index):
            make_email(mailbox)
    ids = [mailbox.pk for mailbox in mailboxes]
    for chosen in ([], ids[:1], ids[1:3], {*ids, "00NOSUCHMAILBOX"}):
        assert _ids(in_mailboxes.rows(mailbox_ids=chosen)) == _ids(
            list(in_mailboxes.queryset(mailbox_ids=chosen))
        )
    assert len(in_mailboxes._cache) == 1
    assert None not in in_mailboxes._cache.values()


def test_an_array_the_backend_spells_per_element_runs_as_the_orm(owner: Tenant) -> None:
    """``__in`` writes one ``%s`` per value, as SQLite does for ``__any_of``: the SQL
    depends on the length, so the shape is not compiled, and answers as the ORM does."""
    in_ids = CompiledQuery(
        lambda *, ids: Email.objects.filter(pk__in=ids), params=(), arrays=("ids",)
    )
    made = [make_email(owner.mailbox) for _ in range(3)]
    for chosen in (_ids(made[:1]), _ids(made)):
        assert _ids(in_ids.rows(ids=chosen)) == _ids(list(in_ids.queryset(ids=chosen)))
    assert list(in_ids._cache.values()) == [None]


def test_a_datetime_placeholder_is_the_same_instant(owner: Tenant) -> None:
    """Compared as the ORM compares it, to the microsecond, in whatever zone it comes;
    a naive one is refused (the ORM would read it in the current zone, the driver not)."""
    since_query = CompiledQuery(
        lambda *, since: Email.objects.filter(received_at__gte=since).only("pk"),
        params=(),
        datetimes=("since",),
    )
    now = timezone.now()
    made = [
        make_email(owner.mailbox, received_at=now - timedelta(microseconds=offset))
        for offset in (0, 1, 2)
    ]
    assert made
    for offset in (0, 1, 2, 3):
        for zone in (UTC, timezone.get_fixed_timezone(-300)):
            since = (now - timedelta(microseconds=offset)).astimezone(zone)
            assert _ids(since_query.rows(since=since)) == _ids(
                list(since_query.queryset(since=since))
            )
    assert None not in since_query._cache.values()
    with pytest.raises(ValueError, match="aware"):
        since_query.rows(since=now.replace(tzinfo=None))


def test_a_datetime_the_backend_transforms_runs_as_the_orm(owner: Tenant) -> None:
    """A datetime compared with a date is turned into one before it reaches the SQL: it is
    not the placeholder any more, so the shape runs as the ORM's queryset."""
    on_or_after = CompiledQuery(
        lambda *, since: Email.objects.filter(received_at__date__gte=since),
        params=(),
        datetimes=("since",),
    )
    make_email(owner.mailbox)
    since = timezone.now() - timedelta(days=1)
    assert _ids(on_or_after.rows(since=since)) == _ids(list(on_or_after.queryset(since=since)))
    assert list(on_or_after._cache.values()) == [None]


@pytest.mark.django_db(transaction=True)
def test_a_compiled_lock_is_refused_outside_a_transaction() -> None:
    """As the compiler refuses it on each call: the lock would end with the statement."""
    locking = CompiledQuery(
        lambda *, pk: Mailbox.objects.select_for_update().filter(pk=pk), params=("pk",)
    )
    with transaction.atomic():
        assert locking.rows(pk="00NOSUCHMAILBOX") == []
    with pytest.raises(TransactionManagementError):
        locking.rows(pk="00NOSUCHMAILBOX")


def test_a_parameter_left_out_is_its_own_shape(owner: Tenant) -> None:
    """A call without a parameter builds SQL without its condition: it must not run (or be
    run as) the SQL of a call that gave it."""
    made = [make_email(owner.mailbox) for _ in range(2)]
    by_ids = CompiledQuery(
        lambda **ids: Email.objects.filter(**{"pk__in": [v for v in ids.values() if v]}),
        params=("first", "second"),
    )
    first, second = made[0].pk, made[1].pk
    assert _ids(by_ids.rows(first=first)) == [first]
    assert sorted(_ids(by_ids.rows(first=first, second=second))) == sorted([first, second])
    assert _ids(by_ids.rows(first=second)) == [second]
