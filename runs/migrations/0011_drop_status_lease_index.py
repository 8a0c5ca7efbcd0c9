from django.db import migrations

from agentops.concurrent_index import RemoveIndexConcurrently


class Migration(migrations.Migration):
    # Every step's lease fence sets lease_expires_at; with it in an index no fence could be a HOT update,
    # so each wrote a new entry into every one of runs_run's indexes (17, two of them trigram GIN). The
    # reconciler's "running and expired" query is served by the status index: running runs are few.
    # Dropped CONCURRENTLY on PostgreSQL (agentops/concurrent_index.py) so steps are not blocked.
    atomic = False

    dependencies = [
        ("runs", "0010_erasure_indexes"),
    ]

    operations = [
        RemoveIndexConcurrently(model_name="run", name="runs_run_status_ab3a90_idx"),
    ]
