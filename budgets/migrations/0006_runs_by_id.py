"""Budgets references runs and agents by id: the foreign keys to runs.Run and runs.Agent become
plain integer columns of the same name (run_id, agent_id), so no row or value moves.

1. the database drops the foreign-key constraints (and Reservation's duplicate index on run_id:
   its Meta index covers it); the columns and their values stay;
2. the model state replaces each ForeignKey with a BigIntegerField of the column's name.

Deleting a run or an agent no longer cascades into budgets' rows: the ledger is history and keeps
the id. Nothing deletes agents, and the runs that are deleted (demo history, benchmark tenants)
are deleted after their ledger rows (budgets.demo, budgets.bench).
"""

from django.db import migrations, models


def _state(model: str, old: str, new: str, field: models.Field) -> list[migrations.operations.base.Operation]:
    return [migrations.RemoveField(model, old), migrations.AddField(model, new, field)]


class Migration(migrations.Migration):
    dependencies = [("budgets", "0005_unknown_outcome_and_tier_bounds"), ("runs", "0001_initial")]

    operations = [
        migrations.AlterField("reservation", "run", models.ForeignKey(
            "runs.Run", on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False)),
        migrations.AlterField("spendentry", "run", models.ForeignKey(
            "runs.Run", null=True, blank=True, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False)),
        migrations.AlterField("spendentry", "agent", models.ForeignKey(
            "runs.Agent", null=True, blank=True, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False)),
        migrations.AlterField("agentestimate", "agent", models.OneToOneField(
            "runs.Agent", on_delete=models.DO_NOTHING, related_name="+", db_constraint=False)),
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.RemoveIndex("reservation", "budgets_res_run_id_4de290_idx"),
            *_state("reservation", "run", "run_id", models.BigIntegerField()),
            migrations.AddIndex("reservation", models.Index(fields=["run_id"], name="budgets_res_run_id_4de290_idx")),
            *_state("spendentry", "run", "run_id", models.BigIntegerField(null=True, blank=True, db_index=True)),
            *_state("spendentry", "agent", "agent_id", models.BigIntegerField(null=True, blank=True, db_index=True)),
            *_state("agentestimate", "agent", "agent_id", models.BigIntegerField(unique=True)),
        ]),
    ]
