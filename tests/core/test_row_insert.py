"""Rows written by SQL built once (multimail.inserts) are the rows ``save`` writes.

``row_insert`` writes every new email (``lifecycle.email_create``); the account event's
INSERT (``events.record_and_read``) is built from the same columns and values, and so is
``rows_upsert``, which records correspondents as ``bulk_create(update_conflicts=True)``
did. Over
generated emails (every direction and status, text, lists and mappings in the JSON
columns, empty and set optional columns), the row in the database and the instance in
memory are the same as ``Email.objects.create`` leaves; the save signals are sent as
``save`` sends them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import transaction
from django.db.models import Model
from django.db.models.signals import post_save, pre_save
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.actors import Actor
from accounts.models import AuditEntry
from accounts.services import api_key_create, audit_record
from mailboxes.models import Correspondent, Direction, Email, EmailStatus, Mailbox
from multimail.ids import new_id
from multimail.inserts import insert_columns, row_insert, rows_upsert
from tests.conftest import Tenant

pytestmark = pytest.mark.django_db

# PostgreSQL stores no NUL character in text, nor a lone surrogate.
_text = st.text(
    alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
    max_size=30,
)
_moment = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
)
_fields = st.fixed_dictionaries(
    {
        "direction": st.sampled_from(Direction.values),
        "status": st.sampled_from(EmailStatus.values),
        "from_address": _text,
        "to": st.lists(_text, max_size=3),
        "cc": st.lists(_text, max_size=2),
        "subject": _text,
        "markdown": _text,
        "html": _text,
        "message_id": _text,
        "thread_id": st.just("01THREAD"),
        "received_at": _moment,
        "status_changed_at": _moment,
        "send_at": st.one_of(st.none(), _moment),
        "spam_score": st.one_of(st.none(), st.integers(-1000, 1000)),
        "spam_reasons": st.lists(_text, max_size=2),
        "headers": st.dictionaries(_text, _text, max_size=3),
        "tags": st.dictionaries(_text, st.one_of(_text, st.integers(), st.booleans())),
        "has_attachments": st.booleans(),
        "size_bytes": st.integers(0, 2**40),
        "idempotency_key": st.one_of(st.none(), _text),
        "send_attempts": st.integers(0, 100),
    },
    optional={"text": _text, "edited_by_operator": st.booleans()},
)


def _memory(obj: Model) -> Any:
    """The instance's values and state but its id and mailbox (each copy has its own: a
    Message-ID is stored once per mailbox)."""
    state = {k: v for k, v in obj.__dict__.items() if k not in ("_state", "id", "mailbox_id")}
    return state, obj._state.adding, obj._state.db, sorted(obj._state.fields_cache)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(fields=_fields)
def test_an_inserted_email_is_the_saved_email(owner: Tenant, fields: dict[str, Any]) -> None:
    with transaction.atomic():
        second = Mailbox.objects.create(account=owner.account, address="second@acme.example")
        common = {"account": owner.account, **fields}
        saved = Email.objects.create(id=new_id(), mailbox=owner.mailbox, **common)
        inserted = row_insert(Email(id=new_id(), mailbox=second, **common))
        rows = {
            row.pop("id"): {**row, "mailbox_id": None}
            for row in Email.objects.filter(pk__in=[saved.pk, inserted.pk]).values()
        }
        assert rows[inserted.pk] == rows[saved.pk]
        assert _memory(inserted) == _memory(saved)
        transaction.set_rollback(True)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    by_key=st.booleans(),
    metadata=st.one_of(st.none(), st.dictionaries(_text, st.one_of(_text, st.integers()))),
    texts=st.tuples(_text, _text, _text),
)
def test_an_inserted_audit_entry_is_the_saved_one(
    owner: Tenant, by_key: bool, metadata: Any, texts: tuple[str, str, str]
) -> None:
    """``audit_record`` writes every audit entry with ``row_insert``."""
    action, resource_id, request_id = texts
    with transaction.atomic():
        key = api_key_create(account=owner.account, name="k", scopes=["send"])[0]
        actor = Actor.for_key(key) if by_key else Actor.system(owner.account)
        common = {"action": action, "resource_type": "email", "metadata": metadata}
        saved = AuditEntry.objects.create(
            account=actor.account,
            resource_id=resource_id,
            actor_kind=actor.kind,
            actor_key=actor.api_key,
            actor_label=actor.display,
            request_id=request_id,
            **common,
        )
        inserted = audit_record(
            actor=actor, resource_id=resource_id, request_id=request_id, **common
        )
        rows = {row.pop("id"): row for row in AuditEntry.objects.values()}
        for row in rows.values():
            row.pop("created_at")
        assert rows[inserted.pk] == rows[saved.pk]
        assert _memory_but(inserted, "created_at") == _memory_but(saved, "created_at")
        transaction.set_rollback(True)


def _memory_but(obj: Model, *names: str) -> Any:
    state, adding, db, cached = _memory(obj)
    return {k: v for k, v in state.items() if k not in names}, adding, db, cached


def test_the_save_signals_are_sent(owner: Tenant) -> None:
    heard: list[tuple[str, Any]] = []

    def before(sender: Any, instance: Email, **kwargs: Any) -> None:
        heard.append(("pre_save", (instance._state.adding, kwargs["update_fields"])))

    def after(sender: Any, instance: Email, **kwargs: Any) -> None:
        heard.append(("post_save", (instance._state.adding, kwargs["created"])))

    pre_save.connect(before, sender=Email)
    post_save.connect(after, sender=Email)
    try:
        row_insert(
            Email(
                account=owner.account,
                mailbox=owner.mailbox,
                direction=Direction.INBOUND,
                status=EmailStatus.UNREAD,
                thread_id=new_id(),
            )
        )
    finally:
        pre_save.disconnect(before, sender=Email)
        post_save.disconnect(after, sender=Email)
    assert heard == [("pre_save", (True, None)), ("post_save", (False, True))]


def test_a_row_numbered_by_the_database_is_refused(owner: Tenant) -> None:
    """Its id would have to be read back, which ``row_insert`` does not do."""
    assert Correspondent._meta.auto_field not in insert_columns(Correspondent)
    with pytest.raises(ValueError, match="primary key"):
        row_insert(Correspondent(account=owner.account, address="a@b.example"))


def test_a_model_with_a_database_default_is_refused(
    owner: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``save`` writes DEFAULT for such a column and reads the value back; this INSERT
    would write the expression as a value instead."""
    monkeypatch.setattr(Email._meta.get_field("subject"), "has_db_default", lambda: True)
    with pytest.raises(ValueError, match="database defaults"):
        row_insert(Email(account=owner.account, mailbox=owner.mailbox, id=new_id()))
    with pytest.raises(ValueError, match="database defaults"):
        rows_upsert(
            [Email(account=owner.account, mailbox=owner.mailbox, id=new_id())],
            unique_fields=["id"],
            update_fields=["subject"],
        )


_ADDRESSES = [f"r{index}@example.org" for index in range(5)]
_rows = st.lists(
    st.tuples(st.sampled_from(_ADDRESSES), st.sampled_from(Direction.values)),
    unique=True,
    max_size=6,
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(existing=_rows, written=_rows, moment=_moment)
def test_an_upsert_leaves_the_rows_bulk_create_leaves(
    owner: Tenant,
    other: Tenant,
    existing: list[tuple[str, str]],
    written: list[tuple[str, str]],
    moment: datetime,
) -> None:
    """Over rows already there (of this account and another) and rows written, some the
    same (account, address, direction): the table afterwards is the ORM's, but the ids."""

    def correspondents(account: Any, pairs: list[tuple[str, str]], email_id: str) -> list[Any]:
        return [
            Correspondent(
                account=account,
                address=address,
                direction=direction,
                first_email_id=email_id,
                last_email_id=email_id,
                first_at=moment,
                last_at=moment,
            )
            for address, direction in pairs
        ]

    def table() -> list[dict[str, Any]]:
        rows = Correspondent.objects.order_by("account_id", "address", "direction").values()
        return [{k: v for k, v in row.items() if k != "id"} for row in rows]

    upsert = {"unique_fields": ["account", "address", "direction"]}
    upsert["update_fields"] = ["last_email_id", "last_at"]
    outcomes = []
    for write in (
        lambda objs: Correspondent.objects.bulk_create(objs, update_conflicts=True, **upsert),
        lambda objs: rows_upsert(objs, **upsert),
    ):
        with transaction.atomic():
            for account in (owner.account, other.account):
                Correspondent.objects.bulk_create(correspondents(account, existing, "01OLD"))
            objs = correspondents(owner.account, written, "01NEW")
            write(objs)
            outcomes.append((table(), [obj._state.adding for obj in objs]))
            transaction.set_rollback(True)
    assert outcomes[1] == outcomes[0]
