from django.db import migrations, models
from django.db.models import Q

from agentops.concurrent_index import AddIndexConcurrently, RemoveIndexConcurrently

# The statuses a run ends in (agentops.harness.store.TERMINAL_STATUSES), as the trigger compares them.
TERMINAL = "('succeeded', 'failed', 'capped', 'cancelled')"

# ``cost_rank`` is ``cost`` on a finished run and NULL otherwise. The UPDATE trigger's WHEN clause is false
# for a running run (not finished, cost_rank NULL), so a model call's ``cost = cost + …`` calls no function
# and changes no indexed column: the update can be HOT. A run that finishes, a late settlement on a finished
# run, and a finished run resumed (back to NULL) go through the function.
TRIGGER_SQL = f"""
CREATE OR REPLACE FUNCTION runs_run_cost_rank() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IN {TERMINAL} THEN
        NEW.cost_rank := NEW.cost;
    ELSE
        NEW.cost_rank := NULL;
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS runs_run_cost_rank_insert ON runs_run;
CREATE TRIGGER runs_run_cost_rank_insert BEFORE INSERT ON runs_run FOR EACH ROW
    WHEN (NEW.status IN {TERMINAL} OR NEW.cost_rank IS NOT NULL) EXECUTE FUNCTION runs_run_cost_rank();
DROP TRIGGER IF EXISTS runs_run_cost_rank_update ON runs_run;
CREATE TRIGGER runs_run_cost_rank_update BEFORE UPDATE OF cost, status, cost_rank ON runs_run FOR EACH ROW
    WHEN (NEW.status IN {TERMINAL} OR NEW.cost_rank IS NOT NULL) EXECUTE FUNCTION runs_run_cost_rank();
UPDATE runs_run SET cost_rank = cost WHERE status IN {TERMINAL};
"""

DROP_SQL = """
DROP TRIGGER IF EXISTS runs_run_cost_rank_update ON runs_run;
DROP TRIGGER IF EXISTS runs_run_cost_rank_insert ON runs_run;
DROP FUNCTION IF EXISTS runs_run_cost_rank();
"""


def rank_trigger(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(TRIGGER_SQL)


def drop_rank_trigger(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL)


class Migration(migrations.Migration):
    # Issue 14: the (tenant, cost) index made every model call's run update non-HOT (all 17 of runs_run's
    # indexes written, the trigram GINs re-extracted from the run's input). "Most expensive runs" now walks
    # finished runs by cost_rank and merges the unfinished ones. Indexes built and dropped CONCURRENTLY on
    # PostgreSQL (agentops/concurrent_index.py); the portable path (SQLite) has no trigger and ranks nothing,
    # so there every run is read as unfinished, which is still exact.
    atomic = False

    dependencies = [
        ("runs", "0011_drop_status_lease_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="run",
            name="cost_rank",
            field=models.DecimalField(blank=True, decimal_places=10, editable=False, max_digits=20, null=True),
        ),
        migrations.RunPython(rank_trigger, drop_rank_trigger),
        AddIndexConcurrently(
            model_name="run",
            index=models.Index(condition=Q(cost_rank__isnull=False), fields=["tenant", "-cost_rank", "-id"],
                               name="runs_run_tenant_cost_rank"),
        ),
        AddIndexConcurrently(
            model_name="run",
            index=models.Index(condition=Q(cost_rank__isnull=True), fields=["tenant", "-created_at"], name="runs_run_unfinished"),
        ),
        RemoveIndexConcurrently(model_name="run", name="runs_run_tenant_cost"),
    ]
