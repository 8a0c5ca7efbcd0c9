"""The run list's indexes: each filter then the list's order, and trigram GIN indexes for text search.

pg_trgm and the GIN indexes exist on PostgreSQL only; on SQLite (the demo) they are recorded in the
migration state and skipped in the database, so the list still works there (by a scan).

Built and dropped CONCURRENTLY on PostgreSQL (agentops/concurrent_index.py; ``atomic = False``): a
database with a million runs that reaches this migration keeps taking runs while the indexes build.
The operations and index names are the ones this migration always had, so a database that applied it
before it became concurrent keeps its history and its state.
"""

from django.conf import settings
from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations, models

from agentops.concurrent_index import AddIndexConcurrently, RemoveIndexConcurrently, create_trigram_index, drop_index


TRIGRAM_INDEXES = {"runs_run_input_trgm": "input", "runs_run_result_trgm": "result"}


def trigram_indexes(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, column in TRIGRAM_INDEXES.items():
        create_trigram_index(schema_editor, table="runs_run", name=name, column=column)


def drop_trigram_indexes(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in TRIGRAM_INDEXES:
        drop_index(schema_editor, name=name)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ('runs', '0005_delete_escalation'),
        ('tenants', '0004_webhook_endpoints'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        TrigramExtension(),  # CREATE EXTENSION IF NOT EXISTS pg_trgm; a no-op on SQLite
        RemoveIndexConcurrently(
            model_name='run',
            name='runs_run_tenant__129166_idx',
        ),
        AddIndexConcurrently(
            model_name='run',
            index=models.Index(fields=['tenant', 'status', '-created_at'], name='runs_run_status_created'),
        ),
        AddIndexConcurrently(
            model_name='run',
            index=models.Index(fields=['tenant', 'agent', '-created_at'], name='runs_run_agent_created'),
        ),
        AddIndexConcurrently(
            model_name='run',
            index=models.Index(fields=['tenant', 'outcome', '-created_at'], name='runs_run_outcome_created'),
        ),
        migrations.RunPython(trigram_indexes, drop_trigram_indexes),
    ]
