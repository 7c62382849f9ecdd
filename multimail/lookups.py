"""``column__any_of=[...]``: membership written as ``column = ANY(array)`` on PostgreSQL.

Why not ``IN``/``=``: PostgreSQL treats ``mailbox_id = 'X'`` as a constant and then plans
"newest rows of mailbox X" as a backward walk of the whole primary key, filtering as it
goes. When one mailbox holds most of the table but the newest rows belong to others, that
walk reads hundreds of thousands of rows for a page of 20. With ``= ANY(array)`` the
column is not a known constant, so ``ORDER BY mailbox_id, id DESC`` can only be served by
the (mailbox_id, id) index: a page costs the same whatever the data looks like.
Elsewhere (SQLite) it is a plain ``IN``.
"""

from __future__ import annotations

from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import CharField, ForeignKey, Lookup
from django.db.models.sql.compiler import SQLCompiler


@CharField.register_lookup
@ForeignKey.register_lookup
class AnyOf(Lookup):  # type: ignore[type-arg]
    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> tuple[str, Any]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = [str(value) for value in self.rhs]
        placeholders = ", ".join(["%s"] * len(values)) or "NULL"
        return f"{lhs} IN ({placeholders})", [*lhs_params, *values]

    def as_postgresql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper
    ) -> tuple[str, Any]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s)", [*lhs_params, [str(value) for value in self.rhs]]
