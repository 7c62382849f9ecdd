"""Querysets compiled once per process: the hottest reads skip Django's SQL compiler.

Building and compiling a queryset costs far more CPU than PostgreSQL spends running a
primary-key or index lookup (the compiler resolves every column, join, ordering and
converter on each call). A ``CompiledQuery`` builds its queryset once per *shape* with
placeholder values, compiles it, and remembers the SQL, where each placeholder's value
goes among the parameters, and how a row becomes model instances. Each later call runs
that SQL with the real values and builds the instances the way Django's ModelIterable
does (``from_db``, select_related populators, converters), so callers get the same
objects from the same single statement.

The queryset stays the one definition: ``queryset(...)`` returns it, and the tests hold
the compiled results equal to it. A value is a placeholder only if it reaches the SQL
parameters unchanged (ids, exact matches, ``__any_of``); compiling refuses a shape where
one is transformed (a LIKE pattern, a date) instead of silently baking it in. Arguments
that change the SQL itself (a LIMIT, which filters apply) are shape arguments: each
distinct combination compiles once, so they must come from a small set.

Two more kinds of placeholder ride on what the database driver adapts itself: an *array*
(a collection of strings of any length, for ``__any_of``, which PostgreSQL receives as one
``= ANY(%s)`` parameter) and a *datetime* (aware, compared with a DateTimeField, which
PostgreSQL's backend passes to the driver as it is). A backend that spells them otherwise
(SQLite writes one ``%s`` per element of an array and formats a datetime as text) makes
the SQL depend on the value: that shape is not compiled, and runs as the ORM's queryset.

Every compiled statement runs on ``hot_cursor``: on PostgreSQL its parameters are bound on
the server, so that psycopg prepares it once it has run ``prepare_threshold`` times on a
connection, and PostgreSQL stops parsing and planning it on every request.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any
from weakref import ref as weak_ref

import psycopg
from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.postgresql.base import TIMESTAMPTZ_OID, ServerBindingCursor
from django.db.backends.postgresql.base import CursorDebugWrapper as PostgresDebugWrapper
from django.db.backends.postgresql.psycopg_any import register_tzloader
from django.db.backends.utils import CursorWrapper
from django.db.models import IntegerField, Model, QuerySet
from django.db.models.base import DEFERRED
from django.db.models.expressions import Col, CombinedExpression, Expression, F, Value
from django.db.models.lookups import Exact, IntegerFieldOverflow
from django.db.models.query import ModelIterable, get_related_populators
from django.db.models.sql import UpdateQuery
from django.db.models.sql.where import WhereNode
from django.db.transaction import TransactionManagementError
from psycopg.pq import Format

# A placeholder's value: unique, so that it cannot be mistaken for a constant of the shape.
_MARK = "\x1fcompiled-query:{}\x1f"
# A datetime placeholder's value: recognised among the parameters by identity (the n-th
# declared datetime gets the n-th microsecond of year 1, a date no shape holds anyway).
_DATETIME_MARK = datetime(1, 1, 1, tzinfo=UTC)


def hot_cursor(connection: BaseDatabaseWrapper) -> CursorWrapper:
    """A cursor for a statement keyed by ids that runs on most requests (a compiled query
    or UPDATE, an INSERT built once per model): ``connection.cursor()``, but on PostgreSQL
    with the parameters bound on the server, which is what lets psycopg prepare it.

    Django binds on the client by default (the ORM's SQL is not always preparable, #20516),
    so the connection's other statements never prepare. Only id-keyed statements belong
    here: a prepared statement ends up on PostgreSQL's generic plan, which ignores the
    values; for a search in a large mailbox that plan was measured 25-28x costlier.
    ``prepare_threshold`` (DATABASES OPTIONS, None: never) is psycopg's own."""
    if connection.vendor != "postgresql":
        return connection.cursor()
    # What connection.cursor() does (the health check, connecting, the cursor's time zone,
    # the query log's wrapper), with Django's server-binding cursor class in place of the
    # connection's client-binding one.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        # django-stubs types these cursors as Django's wrappers; they are psycopg's.
        raw = ServerBindingCursor(connection.connection)  # type: ignore[call-arg]
        loader = connection.connection.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)
        if connection.timezone != loader.timezone:
            register_tzloader(connection.timezone, raw)
        connection.validate_thread_sharing()
        if connection.queries_logged:
            return _ServerBoundDebugWrapper(raw, connection)
        return connection.make_cursor(raw)  # type: ignore[arg-type]


class _ServerBoundDebugWrapper(PostgresDebugWrapper):
    """The query log's wrapper for a server-bound cursor: it logs the statement with its
    values written in, as Django does when ``server_side_binding`` is on, where psycopg
    would give the text with $1, $2 (the client-bound statements are logged so too, which
    keeps the log readable and the compiled statements comparable with the ORM's)."""

    def execute(self, sql: Any, params: Any = None) -> Any:
        try:
            logged = sql if params is None else self.db.ops.compose_sql(sql, params)
        except psycopg.DataError:
            # A value PostgreSQL refuses (a NUL in text): the statement itself fails with
            # Django's DataError below, as it does when nothing is logged.
            logged = sql
        with self.debug_sql(logged, params):
            return CursorWrapper.execute(self, sql, params)


@dataclass(frozen=True, slots=True)
class _Compiled:
    alias: str
    sql: str
    # One entry per SQL parameter, as (kind, value): a constant, a placeholder's name
    # ("one", "array", "datetime") or a list of names ("many": an ``__any_of`` list of
    # placeholders).
    slots: tuple[tuple[str, Any], ...]
    init_list: list[str]
    # Per concrete field of the model, its column in the row, or -1 when deferred: what
    # Model.from_db works out per row by name.
    layout: tuple[int, ...]
    related_populators: list[Any]
    converters: list[tuple[int, tuple[list[Callable[..., Any]], Any]]]
    annotation_col_map: dict[str, int]
    from_db: Callable[..., Any]
    track_peers: bool
    # SELECT ... FOR UPDATE: refused outside a transaction, as the compiler refuses it.
    locks: bool


class CompiledQuery[M: Model]:
    """``build(**values)`` returns the queryset; ``params`` names the arguments that are
    SQL parameters (strings: ids and exact values), ``arrays`` those that are collections
    of strings passed as one array (``__any_of``), ``datetimes`` those that are aware
    datetimes; every other argument is part of the shape (hashable). A parameter passed
    as None is part of the shape too: the builder leaves its condition out."""

    def __init__(
        self,
        build: Callable[..., QuerySet[M]],
        *,
        params: Sequence[str],
        arrays: Sequence[str] = (),
        datetimes: Sequence[str] = (),
    ) -> None:
        self._build = build
        self._params = (*params, *arrays, *datetimes)
        self._arrays = frozenset(arrays)
        self._datetimes = {
            name: _DATETIME_MARK + timedelta(microseconds=index + 1)
            for index, name in enumerate(datetimes)
        }
        # None: a shape this backend cannot compile (see the module's docstring).
        self._cache: dict[Hashable, _Compiled | None] = {}

    def queryset(self, **values: Any) -> QuerySet[M]:
        """The ORM's queryset for these values: what ``rows`` must return."""
        return self._build(**values)

    def rows(self, *, using: str | None = None, **values: Any) -> list[M]:
        """The queryset's instances for these values, from one statement, on ``using`` or
        the database the routers choose for the queryset (asked once per shape)."""
        marked = frozenset(k for k in self._params if values.get(k) is not None)
        shape = tuple(sorted((k, v) for k, v in values.items() if k not in marked))
        # Which parameters are given is part of the key: a parameter left out is in neither
        # the shape nor the marks, and its condition is not in the SQL.
        key = (using, shape, marked)
        if key in self._cache:
            compiled = self._cache[key]
        else:
            compiled = self._cache[key] = self._compile(using, dict(shape), marked)
        if compiled is None:
            queryset = self._build(**values)
            return list(queryset if using is None else queryset.using(using))
        params = [
            value if kind == "constant" else _fill(kind, value, values)
            for kind, value in compiled.slots
        ]
        connection = connections[compiled.alias]
        if compiled.locks and connection.get_autocommit():
            # The row locks would end with the statement.
            raise TransactionManagementError(
                "select_for_update cannot be used outside of a transaction."
            )
        with hot_cursor(connection) as cursor:
            cursor.execute(compiled.sql, params)
            fetched = cursor.fetchall()
        return _instances(compiled, fetched, compiled.alias, connection)

    def _compile(
        self, using: str | None, shape: dict[str, Any], marked: frozenset[str]
    ) -> _Compiled | None:
        marks = {
            name: self._datetimes[name] if name in self._datetimes else _MARK.format(name)
            for name in marked
        }
        built = {name: [mark] if name in self._arrays else mark for name, mark in marks.items()}
        queryset = self._build(**shape, **built)
        if using is not None:
            queryset = queryset.using(using)
        alias = queryset.db
        if queryset._iterable_class is not ModelIterable:
            raise ValueError("CompiledQuery builds model instances only")
        # Private state ModelIterable reads too (django-stubs does not declare it).
        state: Any = queryset
        if state._prefetch_related_lookups or state._known_related_objects:
            raise ValueError("CompiledQuery does not prefetch or set known related objects")
        compiler = queryset.query.get_compiler(using=alias)
        sql, sql_params = compiler.as_sql()
        names = {mark: name for name, mark in marks.items() if isinstance(mark, str)}
        dates = {id(mark): name for name, mark in marks.items() if isinstance(mark, datetime)}
        slots = tuple(_slot(param, names, dates, self._arrays) for param in sql_params)
        used = {
            n for kind, v in slots if kind != "constant" for n in (v if kind == "many" else [v])
        }
        # An array spelled one parameter per element, a datetime the backend formatted:
        # the SQL holds the value itself, so this backend runs the queryset instead.
        if any(kind == "one" and v in self._arrays for kind, v in slots) or (
            set(self._datetimes) & marked - used
        ):
            return None
        if used != marked:
            missing = ", ".join(sorted(marked - used))
            raise ValueError(f"placeholders not passed to the SQL unchanged: {missing}")
        select, klass_info = compiler.select, compiler.klass_info
        if compiler.has_composite_fields([column[0] for column in select]):
            raise ValueError("CompiledQuery does not select composite primary keys")
        start = klass_info["select_fields"][0]
        end = klass_info["select_fields"][-1] + 1
        init_list = [column[0].target.attname for column in select[start:end]]
        columns = {attname: start + index for index, attname in enumerate(init_list)}
        fetch_mode = state._fetch_mode
        return _Compiled(
            alias=alias,
            sql=sql,
            slots=slots,
            init_list=init_list,
            layout=tuple(columns.get(f.attname, -1) for f in queryset.model._meta.concrete_fields),
            related_populators=get_related_populators(klass_info, select, alias, fetch_mode),
            converters=list(
                compiler.get_converters([s[0] for s in select[: compiler.col_count]]).items()
            ),
            annotation_col_map=dict(compiler.annotation_col_map or {}),
            from_db=partial(queryset.model.from_db, fetch_mode=fetch_mode),
            track_peers=fetch_mode.track_peers,
            locks=queryset.query.select_for_update
            and connections[alias].features.has_select_for_update,
        )


def _slot(
    param: Any, names: dict[str, str], dates: dict[int, str], arrays: frozenset[str]
) -> tuple[str, Any]:
    if isinstance(param, str) and param in names:
        return ("one", names[param])
    if isinstance(param, datetime) and id(param) in dates:
        return ("datetime", dates[id(param)])
    if (
        isinstance(param, list | tuple)
        and len(param) == 1
        and isinstance(param[0], str)
        and names.get(param[0]) in arrays
    ):
        return ("array", names[param[0]])
    if isinstance(param, list | tuple) and param and all(p in names for p in param):
        return ("many", [names[p] for p in param])
    if any(mark in str(param) for mark in names):
        raise ValueError(f"a placeholder reaches the SQL transformed: {param!r}")
    return ("constant", param)


def _fill(kind: str, name: Any, values: dict[str, Any]) -> Any:
    if kind == "one":
        return str(values[name])
    if kind == "array":
        return [str(value) for value in values[name]]
    if kind == "datetime":
        value = values[name]
        if not isinstance(value, datetime) or value.tzinfo is None:
            # The ORM would make a naive one aware in the current time zone; the driver
            # would not: refused rather than compared at another instant.
            raise ValueError(f"{name} must be an aware datetime, not {value!r}")
        return value
    return [str(values[n]) for n in name]


def _instances(compiled: _Compiled, fetched: list[Any], db: str, connection: Any) -> list[Any]:
    """ModelIterable's row-to-instance loop, with everything it computes per query done
    once at compile time."""
    init_list, layout = compiled.init_list, compiled.layout
    peers: list[Any] = []
    objects = []
    for fetched_row in fetched:
        row = list(fetched_row)
        for position, (converters, expression) in compiled.converters:
            value = row[position]
            for converter in converters:
                value = converter(value, expression, connection)
            row[position] = value
        obj = compiled.from_db(db, init_list, [row[i] if i >= 0 else DEFERRED for i in layout])
        if compiled.track_peers:
            peers.append(weak_ref(obj))
            obj._state.peers = peers
        for populator in compiled.related_populators:
            populator.populate(row, obj)
        for attr_name, position in compiled.annotation_col_map.items():
            setattr(obj, attr_name, row[position])
        objects.append(obj)
    return objects


# --- Updates -----------------------------------------------------------------------------
#
# The UPDATE counterpart: compiling ``queryset.update(**fields)`` costs the same resolving
# of every filter and value as a SELECT does, for a statement PostgreSQL runs on one row.
# The WHERE placeholders are CompiledQuery's (strings that reach the SQL unchanged), and
# dates and datetimes compared with ``=``, which go through their field's preparation at
# run time, as their lookup prepares them, and integers compared with a column (``=``,
# ``<=``, ...), which their lookup prepares at run time too. A plain SET value goes through
# its field's get_db_prep_save at run time, as the compiler does. In an expression in SET
# (``F("n") + 5``) each integer literal is a parameter as well, prepared as its Value is:
# the rest of the expression is part of the shape, so it must come from a small set.

# Typed placeholders: values their fields' preparation keeps as they are (aware, and far
# from any date a shape compares with); the n-th placeholder of a shape is n days later.
_MARK_DATE = date(1, 1, 1)


@dataclass(frozen=True, slots=True)
class _CompiledUpdate:
    alias: str
    sql: str
    # One entry per SQL parameter: a constant, a string placeholder ("one", "many": as in
    # _Compiled), ("lookup", (name, lookup)) for a date its lookup prepares, ("int", (name,
    # lookup)) for an integer its lookup prepares, ("save", (name, field)) for a SET value
    # its field prepares, or ("literal", (n, field)) for the n-th integer literal of the
    # SET expressions.
    slots: tuple[tuple[str, Any], ...]


class _SetSlot(Expression):
    """A plain SET value while the statement compiles: one ``%s`` whose parameter is this
    object, so that its place among the parameters is known."""

    contains_aggregate = False
    contains_over_clause = False

    def resolve_expression(self, *args: Any, **kwargs: Any) -> _SetSlot:
        return self

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        return "%s", [self]


class _IntSlot(Value):
    """An integer while the statement compiles: a named parameter (``key``, its name) that
    a lookup compares with a column, or the ``key``-th integer literal of the SET
    expressions. One ``%s`` whose parameter is this object, so that its place among the
    parameters is known. A Value, so that a lookup writes it as it writes an integer (no
    parentheses), and an integer's output field, so that an expression around it resolves
    its type as around the literal."""

    def __init__(self, key: str | int) -> None:
        super().__init__(None, output_field=IntegerField())
        self.key = key

    def resolve_expression(self, *args: Any, **kwargs: Any) -> _IntSlot:
        return self

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        return "%s", [self]


class _OutOfRange(Exception):
    """An integer beyond its column's range: the ORM sends no parameter for that comparison
    (it is true or false of every row), so the compiled statement does not apply."""


class CompiledUpdate[M: Model]:
    """``build(**values)`` returns the queryset whose ``update(**fields)`` this runs. As in
    CompiledQuery, ``params`` name the arguments that are SQL parameters (ids and exact
    values, and here dates, datetimes and integers too), every other argument is part of
    the shape, and a parameter passed as None is part of the shape (the builder gets the
    None: it leaves its condition out, or compares IS NULL). Which fields are set, and any
    expression set but for its integer literals, are part of the shape as well."""

    def __init__(self, build: Callable[..., QuerySet[M]], *, params: Sequence[str]) -> None:
        self._build = build
        self._params = tuple(params)
        self._cache: dict[Hashable, _CompiledUpdate] = {}

    def queryset(self, **values: Any) -> QuerySet[M]:
        """The ORM's queryset for these values: ``update(fields, **values)`` runs what its
        ``update(**fields)`` runs."""
        return self._build(**values)

    def update(self, fields: Mapping[str, Any], *, using: str | None = None, **values: Any) -> int:
        """The number of rows ``queryset(**values).update(**fields)`` updates, from the same
        single statement."""
        marked = {k: _kind(values[k]) for k in self._params if values.get(k) is not None}
        shape = tuple(sorted((k, v) for k, v in values.items() if k not in marked))
        literals: list[int] = []
        sets = tuple(
            (name, _set_shape(value, literals) if hasattr(value, "resolve_expression") else None)
            for name, value in fields.items()
        )
        key = (using, shape, tuple(sorted(marked.items())), sets)
        compiled = self._cache.get(key)
        if compiled is None:
            slotted = tuple(
                (name, None if set_key is None else _literals_out(fields[name], []))
                for name, set_key in sets
            )
            compiled = self._cache[key] = self._compile(using, dict(shape), marked, slotted)
        connection = connections[compiled.alias]
        try:
            params = [
                value
                if kind == "constant"
                else _update_param(kind, value, values, fields, literals, connection)
                for kind, value in compiled.slots
            ]
        except _OutOfRange:
            queryset = self._build(**values)
            return (queryset if using is None else queryset.using(using)).update(**fields)
        with (
            transaction.mark_for_rollback_on_error(using=compiled.alias),
            hot_cursor(connection) as cursor,
        ):
            cursor.execute(compiled.sql, params)
            return int(cursor.rowcount)

    def _compile(
        self,
        using: str | None,
        shape: dict[str, Any],
        marked: dict[str, str],
        sets: tuple[tuple[str, Any], ...],
    ) -> _CompiledUpdate:
        marks = {name: _update_mark(kind, n, name) for n, (name, kind) in enumerate(marked.items())}
        queryset = self._build(**shape, **marks)
        if using is not None:
            queryset = queryset.using(using)
        state: Any = queryset  # what QuerySet.update sets first (django-stubs omits it)
        state._for_write = True
        alias = queryset.db
        query = queryset.query
        if query.is_sliced or query.distinct_fields or query.combinator or query.order_by:
            raise ValueError("CompiledUpdate updates filtered rows only")
        update: Any = query.chain(UpdateQuery)  # an UpdateQuery (django-stubs: a Query)
        set_slots = {name: _SetSlot() for name, expression in sets if expression is None}
        update.add_update_values({name: set_slots.get(name, value) for name, value in sets})
        update.clear_select_clause()
        if update.related_updates:
            raise ValueError("CompiledUpdate updates the queryset's own table only")
        set_fields: dict[int, tuple[str, Any]] = {}
        for field, _, value in update.values:
            if getattr(field, "get_placeholder_sql", None) is not None:
                raise ValueError(f"{field.name} is written through a placeholder of its own")
            for name, slot in set_slots.items():
                if value is slot:
                    set_fields[id(slot)] = (name, field)
        compiler = update.get_compiler(using=alias)
        sql, sql_params = compiler.as_sql()
        connection = connections[alias]
        typed = _typed_lookups(update.where, marks, marked, compiler, connection)
        compared = _int_lookups(update.where, marks, marked)
        names = {mark: name for name, mark in marks.items() if marked[name] == "str"}
        slots = tuple(
            _update_slot(param, names, set_fields, typed, compared) for param in sql_params
        )
        written = {value[0] for kind, value in slots if kind == "save"}
        placed = {value[0] for kind, value in slots if kind in ("lookup", "int")}
        placed |= {n for kind, v in slots if kind in ("one", "many") for n in _slot_names(kind, v)}
        if written != set(set_slots) or placed != set(marked):
            missing = ", ".join(sorted((set(set_slots) - written) | (set(marked) - placed)))
            raise ValueError(
                f"values not passed to the SQL as their fields prepare them: {missing}"
            )
        return _CompiledUpdate(alias=alias, sql=sql, slots=slots)


def _kind(value: Any) -> str:
    # datetime before date: a datetime is a date too; a bool is an int, but no integer.
    if isinstance(value, datetime):
        return "datetime"
    if type(value) is int:
        return "int"
    return "date" if isinstance(value, date) else "str"


def _update_mark(kind: str, n: int, name: str) -> Any:
    if kind == "int":
        return _IntSlot(name)
    if kind == "datetime":
        return _DATETIME_MARK + timedelta(days=n)
    if kind == "date":
        return _MARK_DATE + timedelta(days=n)
    return _MARK.format(n)


def _slot_names(kind: str, value: Any) -> list[str]:
    return [value] if kind == "one" else list(value)


def _typed_lookups(
    where: WhereNode, marks: dict[str, Any], marked: dict[str, str], compiler: Any, connection: Any
) -> list[tuple[Any, str, Exact]]:
    """The parameter each date or datetime placeholder became, with its name and lookup:
    only an ``=`` on a column, whose preparation ``_lookup_param`` repeats at run time."""
    typed = {id(marks[name]): name for name, kind in marked.items() if kind in ("date", "datetime")}
    found: list[tuple[Any, str, Exact]] = []
    for lookup in _leaves(where):
        name = typed.get(id(getattr(lookup, "rhs", None)))
        if name is None:
            continue
        if (
            type(lookup) is not Exact
            or not isinstance(lookup.lhs, Col)
            or lookup.bilateral_transforms
        ):
            raise ValueError(f"{name} is compared other than with = on a column")
        _, params = lookup.process_rhs(compiler, connection)
        param = _lookup_param(lookup, marks[name], connection)
        if list(params) != [param]:
            raise ValueError(f"{name} is not prepared as an = on its column prepares it")
        found.append((param, name, lookup))
    if sorted(name for _, name, _ in found) != sorted(typed.values()):
        raise ValueError("each date placeholder must be compared exactly once")
    return found


def _int_lookups(where: WhereNode, marks: dict[str, Any], marked: dict[str, str]) -> dict[str, Any]:
    """The lookup that compares each integer placeholder, by name: only with a column,
    once, and not through a transform (whose preparation ``_lookup_param`` would skip)."""
    found: dict[str, Any] = {}
    for lookup in _leaves(where):
        slot = getattr(lookup, "rhs", None)
        name = str(slot.key) if isinstance(slot, _IntSlot) else None
        if name is None or slot is not marks.get(name):
            continue
        if not isinstance(lookup.lhs, Col) or lookup.bilateral_transforms or name in found:
            raise ValueError(f"{name} is compared other than once with a column")
        found[name] = lookup
    if set(found) != {name for name, kind in marked.items() if kind == "int"}:
        raise ValueError("each integer placeholder must be compared with a column")
    return found


def _set_shape(expression: Any, literals: list[int]) -> Hashable:
    """The part of a SET expression's key that is not its integer literals, which are
    appended to ``literals`` in the order ``_literals_out`` takes them. For what the
    counters write (F, integer literals, arithmetic between them) a tuple of names, cheap
    to build and hash; for any other expression ``_literals_out``'s expression, whose hash
    Django works out from its constructor's arguments on every call."""
    start = len(literals)
    shape = _arithmetic_shape(expression, literals)
    if shape is not None:
        return shape
    del literals[start:]
    return _literals_out(expression, literals)


def _arithmetic_shape(expression: Any, literals: list[int]) -> Hashable | None:
    kind = type(expression)
    if kind is F:
        return ("F", expression.name)
    # An output field given to the constructor is part of the shape (as in _literals_out):
    # such expressions are left to the general key.
    own_field = "output_field" in expression.__dict__
    if kind is Value and type(expression.value) is int and not own_field:
        literals.append(expression.value)
        return ("literal",)
    if kind is CombinedExpression and not own_field:
        lhs = _arithmetic_shape(expression.lhs, literals)
        rhs = None if lhs is None else _arithmetic_shape(expression.rhs, literals)
        return None if rhs is None else ("combined", expression.connector, lhs, rhs)
    return None


def _literals_out(expression: Any, literals: list[int]) -> Any:
    """``expression`` with each integer literal (a plain ``Value`` of an int, as ``F("n") +
    5`` makes) replaced by the next _IntSlot, its value appended to ``literals``: equal
    for every expression that differs from it only in those literals, so it is the key.
    Rebuilt from its constructor's arguments (what ``deconstruct`` returns) only where a
    literal is replaced."""
    if type(expression) is Value and type(expression.value) is int:
        if expression.deconstruct()[2]:  # an output field of its own: part of the shape
            return expression
        literals.append(expression.value)
        return _IntSlot(len(literals) - 1)
    if not hasattr(expression, "resolve_expression") or not hasattr(expression, "deconstruct"):
        return expression
    _, args, kwargs = expression.deconstruct()
    new_args = [_literals_out(arg, literals) for arg in args]
    new_kwargs = {name: _literals_out(arg, literals) for name, arg in kwargs.items()}
    if all(new is old for new, old in zip(new_args, args, strict=True)) and all(
        new_kwargs[name] is arg for name, arg in kwargs.items()
    ):
        return expression
    return type(expression)(*new_args, **new_kwargs)


def _leaves(node: WhereNode) -> Iterator[Any]:
    for child in node.children:
        if isinstance(child, WhereNode):
            yield from _leaves(child)
        else:
            yield child


def _lookup_param(lookup: Exact, value: Any, connection: Any) -> Any:
    """What an ``=`` lookup on a column makes of ``value`` (Lookup.get_prep_lookup, then
    its get_db_prep_lookup)."""
    prepared = lookup.lhs.output_field.get_prep_value(value)
    return lookup.get_db_prep_lookup(prepared, connection)[1][0]


def _update_slot(
    param: Any,
    names: dict[str, str],
    set_fields: dict[int, tuple[str, Any]],
    typed: list[tuple[Any, str, Exact]],
    compared: dict[str, Any],
) -> tuple[str, Any]:
    if isinstance(param, _SetSlot):
        return ("save", set_fields[id(param)])
    if isinstance(param, _IntSlot):
        if isinstance(param.key, int):
            return ("literal", (param.key, param.output_field))
        return ("int", (param.key, compared[param.key]))
    for prepared, name, lookup in typed:
        if type(param) is type(prepared) and param == prepared:
            return ("lookup", (name, lookup))
    return _slot(param, names, {}, frozenset())


def _update_param(
    kind: str,
    slot: Any,
    values: dict[str, Any],
    fields: Mapping[str, Any],
    literals: list[int],
    connection: Any,
) -> Any:
    if kind == "save":
        name, field = slot
        return _save_param(field, fields[name], connection)
    if kind == "lookup":
        name, lookup = slot
        return _lookup_param(lookup, values[name], connection)
    if kind == "int":
        name, lookup = slot
        return _int_param(lookup, values[name], connection)
    if kind == "literal":
        # What Value.as_sql sends for the literal in a SET (resolved for saving).
        index, field = slot
        return field.get_db_prep_save(literals[index], connection=connection)
    return _fill(kind, slot, values)


def _int_param(lookup: Any, value: int, connection: Any) -> Any:
    """What a lookup comparing a column with ``value`` sends; _OutOfRange where it sends
    nothing (IntegerFieldOverflow: beyond the column's range the comparison is decided)."""
    if isinstance(lookup, IntegerFieldOverflow):  # a mixin of Lookup classes
        internal_type = lookup.lhs.output_field.get_internal_type()  # type: ignore[attr-defined]
        least, most = connection.ops.integer_field_range(internal_type)
        if (least is not None and value < least) or (most is not None and value > most):
            raise _OutOfRange
    return _lookup_param(lookup, value, connection)


def _save_param(field: Any, value: Any, connection: Any) -> Any:
    """What SQLUpdateCompiler.as_sql makes of a plain value."""
    if hasattr(value, "prepare_database_save"):
        if not field.remote_field:
            raise TypeError(f"Tried to update field {field} with a model instance, {value!r}")
        value = value.prepare_database_save(field)
    prepared = field.get_db_prep_save(value, connection=connection)
    if hasattr(prepared, "as_sql"):
        raise ValueError(f"{field.name}: a value that compiles is part of the shape")
    return prepared
