"""New rows written with SQL built once per model: the hottest INSERTs skip Django's compiler.

``Model.save`` and ``bulk_create`` build their INSERT afresh on every call (every column's
name quoted, placeholders and RETURNING worked out), which for a wide row such as an
email costs more CPU than preparing its values. ``row_insert`` writes the same row: each
column's value prepared as ``save`` prepares it for an INSERT (defaults and ``auto_now``
applied, then ``get_db_prep_save``), into the columns ``save`` writes, with the model's
save signals sent and the instance's state left as after ``save``. ``insert_columns`` and
``insert_values`` are those two halves, for a statement that embeds the INSERT (a WITH).
``rows_upsert`` is ``bulk_create(update_conflicts=True)`` built the same way, once per
number of rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from django.db import connections, router, transaction
from django.db.models import Field, Model
from django.db.models.constants import OnConflict
from django.db.models.signals import post_save, pre_save

from multimail.statements import hot_cursor


@cache
def insert_columns(model: type[Model]) -> tuple[Field[Any, Any], ...]:
    """The fields an INSERT of a new ``model`` row writes, in model order: all concrete
    ones but a primary key the database numbers and generated columns."""
    auto = model._meta.auto_field
    return tuple(
        field
        for field in model._meta.concrete_fields
        if field is not auto and not field.generated and field.column
    )


def insert_values(obj: Model, connection: Any) -> list[Any]:
    """``obj``'s value for each of ``insert_columns``, prepared as ``save`` prepares it."""
    return [
        field.get_db_prep_save(field.pre_save(obj, add=True), connection)
        for field in insert_columns(type(obj))
    ]


@cache
def _insert_sql(model: type[Model], alias: str, rows: int = 1) -> str:
    """The INSERT of ``rows`` new rows of ``model`` (its values in insert_columns order)."""
    quote = connections[alias].ops.quote_name
    columns = insert_columns(model)
    row = f"({', '.join(['%s'] * len(columns))})"
    return (
        f"INSERT INTO {quote(model._meta.db_table)} "  # noqa: S608 (model names only)
        f"({', '.join(quote(str(field.column)) for field in columns)}) "
        f"VALUES {', '.join([row] * rows)}"
    )


def _refuse_database_defaults(model: type[Model]) -> None:
    if any(field.has_db_default() for field in insert_columns(model)):
        # save writes DEFAULT and reads the value back; these statements do neither.
        raise ValueError("rows are written here for models without database defaults only")


def row_insert[M: Model](obj: M) -> M:
    """Write ``obj`` as a new row, as ``obj.save(force_insert=True)`` does, for a model
    whose primary key is set in Python (no value is read back)."""
    model = type(obj)
    if model._meta.auto_field is not None and model._meta.pk is model._meta.auto_field:
        raise ValueError("row_insert writes rows whose primary key is set before the INSERT")
    _refuse_database_defaults(model)
    obj._prepare_related_fields_for_save(operation_name="save")  # type: ignore[attr-defined]
    alias = router.db_for_write(model, instance=obj)
    connection = connections[alias]
    pre_save.send(sender=model, instance=obj, raw=False, using=alias, update_fields=None)
    values = insert_values(obj, connection)
    with transaction.mark_for_rollback_on_error(alias), hot_cursor(connection) as cursor:
        cursor.execute(_insert_sql(model, alias), values)
    obj._state.adding = False
    obj._state.db = alias
    post_save.send(
        sender=model, instance=obj, created=True, update_fields=None, raw=False, using=alias
    )
    return obj


@cache
def _upsert_sql(
    model: type[Model],
    alias: str,
    rows: int,
    unique_fields: tuple[str, ...],
    update_fields: tuple[str, ...],
) -> str:
    opts = model._meta
    suffix = connections[alias].ops.on_conflict_suffix_sql(
        insert_columns(model),
        OnConflict.UPDATE,
        [opts.get_field(name).column for name in update_fields],  # type: ignore[union-attr]
        [opts.get_field(name).column for name in unique_fields],  # type: ignore[union-attr]
    )
    return f"{_insert_sql(model, alias, rows)} {suffix}"


def rows_upsert[M: Model](
    objs: Sequence[M], *, unique_fields: Sequence[str], update_fields: Sequence[str]
) -> None:
    """Write ``objs`` as ``bulk_create(objs, update_conflicts=True, unique_fields=...,
    update_fields=...)`` does: a row whose unique fields match an existing one updates
    that row's ``update_fields`` instead. Nothing is read back: an id the database numbers
    stays unset on the instances. In batches the backend takes, one statement each."""
    if not objs:
        return
    model = type(objs[0])
    _refuse_database_defaults(model)
    alias = router.db_for_write(model, instance=objs[0])
    connection = connections[alias]
    columns = insert_columns(model)
    batch = max(connection.ops.bulk_batch_size(list(columns), list(objs)), 1)
    for obj in objs:
        obj._prepare_related_fields_for_save(operation_name="bulk_create")  # type: ignore[attr-defined]
    with transaction.mark_for_rollback_on_error(alias), hot_cursor(connection) as cursor:
        for start in range(0, len(objs), batch):
            chunk = objs[start : start + batch]
            sql = _upsert_sql(model, alias, len(chunk), tuple(unique_fields), tuple(update_fields))
            values = [value for obj in chunk for value in insert_values(obj, connection)]
            cursor.execute(sql, values)
    for obj in objs:
        obj._state.adding = False
        obj._state.db = alias
