"""Index migrations on big tables build CONCURRENTLY on PostgreSQL (agentops/concurrent_index.py)."""

from __future__ import annotations

import pytest
from django.db import connection, models, transaction
from django.db.migrations.loader import MigrationLoader
from django.test.utils import CaptureQueriesContext

from agentops.concurrent_index import AddIndexConcurrently

pytestmark = pytest.mark.django_db(transaction=True)

NAME = "runs_run_test_concurrent"


def _states():  # type: ignore[no-untyped-def]
    loader = MigrationLoader(connection)
    before = loader.project_state(("runs", "0008_list_indexes_concurrently"))
    op = AddIndexConcurrently(
        model_name="run", index=models.Index(fields=["tenant", "iterations"], name=NAME)
    )
    after = before.clone()
    op.state_forwards("runs", after)
    return op, before, after


def _index_valid() -> bool | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = %s",
            [NAME],
        )
        row = cursor.fetchone()
    return None if row is None else bool(row[0])


def test_an_index_is_built_and_dropped_concurrently_outside_a_transaction():
    op, before, after = _states()
    with CaptureQueriesContext(connection) as sql, connection.schema_editor(atomic=False) as editor:
        op.database_forwards("runs", editor, before, after)
    assert any("CREATE INDEX CONCURRENTLY" in q["sql"] and NAME in q["sql"] for q in sql.captured_queries)
    assert _index_valid() is True
    with CaptureQueriesContext(connection) as sql, connection.schema_editor(atomic=False) as editor:
        op.database_backwards("runs", editor, after, before)
    assert any("DROP INDEX CONCURRENTLY" in q["sql"] for q in sql.captured_queries) and _index_valid() is None


def test_inside_a_transaction_it_falls_back_to_a_plain_index():
    op, before, after = _states()
    with transaction.atomic():
        with CaptureQueriesContext(connection) as sql, connection.schema_editor(atomic=False) as editor:
            op.database_forwards("runs", editor, before, after)
        assert _index_valid() is True
        assert not any("CONCURRENTLY" in q["sql"] for q in sql.captured_queries)
        transaction.set_rollback(True)
    assert _index_valid() is None


def test_the_list_index_migrations_run_outside_a_transaction():
    loader = MigrationLoader(connection)
    for key in (
        ("runs", "0006_list_indexes"),
        ("runs", "0008_list_indexes_concurrently"),
        ("tenants", "0006_list_indexes_concurrently"),
        ("escalations", "0002_pending_urgency_index"),
    ):
        assert loader.graph.nodes[key].atomic is False, key
