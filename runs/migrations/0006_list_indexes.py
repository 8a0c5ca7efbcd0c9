"""The run list's indexes: each filter then the list's order, and trigram GIN indexes for text search.

pg_trgm and the GIN indexes exist on PostgreSQL only; on SQLite (the demo) they are recorded in the
migration state and skipped in the database, so the list still works there (by a scan).
"""

from django.conf import settings
from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations, models


TRIGRAM_INDEXES = {"runs_run_input_trgm": "input", "runs_run_result_trgm": "result"}


def trigram_indexes(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, column in TRIGRAM_INDEXES.items():
        schema_editor.execute(f'CREATE INDEX IF NOT EXISTS "{name}" ON "runs_run" USING gin ((UPPER("{column}")) gin_trgm_ops)')


def drop_trigram_indexes(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in TRIGRAM_INDEXES:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):

    dependencies = [
        ('runs', '0005_delete_escalation'),
        ('tenants', '0004_webhook_endpoints'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        TrigramExtension(),  # CREATE EXTENSION IF NOT EXISTS pg_trgm; a no-op on SQLite
        migrations.RemoveIndex(
            model_name='run',
            name='runs_run_tenant__129166_idx',
        ),
        migrations.AddIndex(
            model_name='run',
            index=models.Index(fields=['tenant', 'status', '-created_at'], name='runs_run_status_created'),
        ),
        migrations.AddIndex(
            model_name='run',
            index=models.Index(fields=['tenant', 'agent', '-created_at'], name='runs_run_agent_created'),
        ),
        migrations.AddIndex(
            model_name='run',
            index=models.Index(fields=['tenant', 'outcome', '-created_at'], name='runs_run_outcome_created'),
        ),
        migrations.RunPython(trigram_indexes, drop_trigram_indexes),
    ]
