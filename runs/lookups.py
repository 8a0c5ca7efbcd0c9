"""``has_item``: "this JSON list holds this string", on PostgreSQL and on SQLite alike.

Django's ``__contains`` on a JSONField is PostgreSQL-only (``@>``); on SQLite it raises
NotSupportedError, which took the run list down on the demo's own database. This lookup is
``@>`` (GIN-indexable) on PostgreSQL and a ``json_each`` scan on SQLite.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from django.db import NotSupportedError
from django.db.models import JSONField, Lookup


@JSONField.register_lookup
class HasItem(Lookup):
    lookup_name = "has_item"
    prepare_rhs = False

    def _lhs(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        if not isinstance(self.rhs, str):
            raise TypeError("has_item takes a string")
        sql, params = self.process_lhs(compiler, connection)
        return sql, list(params)

    def as_postgresql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, params = self._lhs(compiler, connection)
        return f"{lhs} @> %s::jsonb", [*params, json.dumps([self.rhs])]

    def as_sqlite(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, params = self._lhs(compiler, connection)
        # lhs is the compiled column reference, the value a bound parameter.
        # Only arrays, as with @> (json_each would also walk an object's values or a lone scalar).
        sql = f"(json_type({lhs}) = 'array' AND EXISTS (SELECT 1 FROM json_each({lhs}) WHERE json_each.value = %s))"  # noqa: S608
        return sql, [*params, *params, self.rhs]

    def as_sql(self, compiler: Any, connection: Any) -> NoReturn:
        raise NotSupportedError(f"has_item is not implemented for {connection.vendor}")
