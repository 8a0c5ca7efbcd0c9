"""Escalation moved from runs to escalations with a state-only migration: rows stay where they are."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from agentops.escalations.models import Escalation


@pytest.mark.django_db(transaction=True)
def test_a_populated_database_migrates_forward_without_losing_escalations() -> None:
    before = [("runs", "0004_outcome_unknown"), ("escalations", None)]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    # prompts and evals sit on later runs migrations; migrating runs back to 0004 unapplied them too.
    others = [n for n in executor.loader.graph.leaf_nodes() if n[0] not in ("runs", "escalations", "prompts", "evals")]
    old = executor.loader.project_state([("runs", "0004_outcome_unknown"), *others]).apps
    assert "escalation" not in old.all_models["escalations"] and "escalation" in old.all_models["runs"]
    tier = old.get_model("tenants", "Tier").objects.create(slug="mig", name="Mig")
    tenant = old.get_model("tenants", "Tenant").objects.create(slug="moved", name="Moved", tier=tier)
    agent = old.get_model("runs", "Agent").objects.create(tenant=tenant, name="mover")
    run = old.get_model("runs", "Run").objects.create(tenant=tenant, agent=agent, input="hi")
    now = timezone.now()
    old_esc = old.get_model("runs", "Escalation").objects.create(
        tenant=tenant, run=run, kind="tool_call", tool_use_id="toolu_1", tool_name="issue_refund", arguments={"amount": 5},
        arguments_sha256="a" * 64, gate_reason="over the limit", sla_due_at=now + timedelta(hours=1),
        expires_at=now + timedelta(hours=2),
    )

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    moved = Escalation.unscoped.get(pk=old_esc.pk)
    assert (moved.run_id, moved.tool_name, moved.arguments, moved.status) == (run.pk, "issue_refund", {"amount": 5}, "pending")
    assert moved.run.escalations.get() == moved  # the reverse relation from runs still works
    with connection.cursor() as cur:
        cur.execute("SELECT to_regclass('escalations_escalation'), to_regclass('runs_escalation')")
        assert cur.fetchone() == (None, "runs_escalation")
