"""Index migrations for big tables: ``CREATE`` / ``DROP INDEX CONCURRENTLY`` on PostgreSQL, a plain index elsewhere.

Building an index on ``runs_run`` at a million rows takes seconds to minutes; a plain ``CREATE INDEX``
holds a lock that blocks every insert and update of the table (every run started, every step settled)
for that long. ``CONCURRENTLY`` does not, but PostgreSQL refuses it inside a transaction, so a migration
using these operations sets ``atomic = False``. SQLite (the demo) has no such statement: there the same
operations build the index the plain way, as ``AddIndex`` does. Inside an open transaction (a test that
migrates within one) they fall back to the plain statement too, which PostgreSQL accepts there.

If a concurrent build fails (a deadlock, a cancelled deploy) PostgreSQL leaves an INVALID index behind:
``DROP INDEX CONCURRENTLY <name>`` and migrate again (``create_trigram_index`` uses ``IF NOT EXISTS`` and
would keep an invalid one: check ``\\d runs_run`` for INVALID after a failed deploy).
"""

from __future__ import annotations

from typing import Any

from django.contrib.postgres import operations as pg
from django.db import migrations


def concurrent(schema_editor: Any) -> bool:
    """Whether this connection can build an index concurrently (PostgreSQL, outside a transaction)."""
    connection = schema_editor.connection
    return connection.vendor == "postgresql" and not connection.in_atomic_block


class _WhereItCan:
    """The concurrent operation (the next class in the MRO) where :func:`concurrent` says it can run,
    ``plain`` (the ordinary operation) elsewhere."""

    plain: Any

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if concurrent(schema_editor):
            super().database_forwards(app_label, schema_editor, from_state, to_state)  # type: ignore[misc]
        else:
            self.plain.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if concurrent(schema_editor):
            super().database_backwards(app_label, schema_editor, from_state, to_state)  # type: ignore[misc]
        else:
            self.plain.database_backwards(self, app_label, schema_editor, from_state, to_state)


class AddIndexConcurrently(_WhereItCan, pg.AddIndexConcurrently):
    """``AddIndex`` that builds concurrently where it can (see the module's docstring)."""

    plain = migrations.AddIndex


class RemoveIndexConcurrently(_WhereItCan, pg.RemoveIndexConcurrently):
    """``RemoveIndex`` that drops concurrently where it can (see the module's docstring)."""

    plain = migrations.RemoveIndex


def create_trigram_index(schema_editor: Any, *, table: str, name: str, column: str) -> None:
    """A pg_trgm GIN index on ``UPPER(column)`` (what ``icontains`` compares); PostgreSQL only, concurrent when it can be."""
    if schema_editor.connection.vendor != "postgresql":
        return
    how = "CONCURRENTLY " if concurrent(schema_editor) else ""
    quote = schema_editor.quote_name
    schema_editor.execute(
        f"CREATE INDEX {how}IF NOT EXISTS {quote(name)} ON {quote(table)} USING gin ((UPPER({quote(column)})) gin_trgm_ops)"
    )


def drop_index(schema_editor: Any, *, name: str) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    how = "CONCURRENTLY " if concurrent(schema_editor) else ""
    schema_editor.execute(f"DROP INDEX {how}IF EXISTS {schema_editor.quote_name(name)}")
