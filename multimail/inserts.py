"""New rows written with SQL built once per model: the hottest INSERTs skip Django's compiler.

``Model.save`` and ``bulk_create`` build their INSERT afresh on every call (every column's
name quoted, placeholders and RETURNING worked out), which for a wide row such as an
email costs more CPU than preparing its values. ``row_insert`` writes the same row: each
column's value prepared as ``save`` prepares it for an INSERT (defaults and ``auto_now``
applied, then ``get_db_prep_save``), into the columns ``save`` writes, with the model's
save signals sent and the instance's state left as after ``save``. ``insert_columns`` and
``insert_values`` are those two halves, for a statement that embeds the INSERT (a WITH).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.db import connections, router, transaction
from django.db.models import Field, Model
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
def _insert_sql(model: type[Model], alias: str) -> str:
    quote = connections[alias].ops.quote_name
    columns = insert_columns(model)
    return (
        f"INSERT INTO {quote(model._meta.db_table)} "  # noqa: S608 (model names only)
        f"({', '.join(quote(str(field.column)) for field in columns)}) "
        f"VALUES ({', '.join(['%s'] * len(columns))})"
    )


def row_insert[M: Model](obj: M) -> M:
    """Write ``obj`` as a new row, as ``obj.save(force_insert=True)`` does, for a model
    whose primary key is set in Python (no value is read back)."""
    model = type(obj)
    if model._meta.auto_field is not None and model._meta.pk is model._meta.auto_field:
        raise ValueError("row_insert writes rows whose primary key is set before the INSERT")
    if any(field.has_db_default() for field in insert_columns(model)):
        # save writes DEFAULT and reads the value back; this statement does neither.
        raise ValueError("row_insert writes rows of models without database defaults")
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
