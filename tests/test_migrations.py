"""Migrating a populated database forward loses nothing.

The database is taken back to the state before budgets stopped pointing at runs with foreign keys
(budgets 0005; every other app at its latest migration), filled through the historical models
with rows in tenants, runs, escalations and budgets, then migrated to the latest state. Every row
and every reference (tenant, run, agent, user, reservation ids) must still be there, and the
foreign keys that crossed floors must be gone.

A transactional test (pytest-django truncates the tables afterwards), on PostgreSQL like CI; the
database is always migrated back to the latest state, even when an assertion fails.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from tests.conftest import ensure_model_prices

BEFORE = ("budgets", "0005_unknown_outcome_and_tier_bounds")

pytestmark = pytest.mark.django_db(transaction=True)


def _executor() -> MigrationExecutor:
    return MigrationExecutor(connection)


def _targets_before() -> list[tuple[str, str]]:
    """Every app at its latest migration except budgets, held at BEFORE."""
    leaves = _executor().loader.graph.leaf_nodes()
    return [BEFORE if app == "budgets" else (app, name) for app, name in leaves]


def _migrate(targets: list[tuple[str, str]]) -> Any:
    executor = _executor()
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


def _populate(apps: Any) -> dict[str, Any]:
    """Rows in every app's tables, written with the historical models of the BEFORE state."""

    def m(label: str) -> Any:
        return apps.get_model(label)._base_manager

    now = timezone.now()
    user = m("auth.User").create(username="migrated-user")
    tier = m("tenants.Tier").create(slug="migrated", name="Migrated")
    tenant = m("tenants.Tenant").create(slug="migrated-co", name="Migrated Co", tier=tier)
    membership = m("tenants.Membership").create(user=user, tenant=tenant, role="admin")
    key = m("tenants.ApiKey").create(tenant=tenant, name="ci", prefix="ao_mig", hashed="0" * 64)
    agent = m("runs.Agent").create(tenant=tenant, name="support", system_prompt="Help.")
    other_agent = m("runs.Agent").create(tenant=tenant, name="triage", system_prompt="Sort.")
    run = m("runs.Run").create(tenant=tenant, agent=agent, submitted_by=user, api_key=key, input="hi", status="succeeded",
                               cost=Decimal("0.0123"), prompt_version_id=7)
    message = m("runs.Message").create(tenant=tenant, run=run, seq=0, role="user", content=[{"type": "text", "text": "hi"}])
    call = m("runs.ToolCall").create(tenant=tenant, run=run, tool_use_id="toolu_1", tool_name="issue_refund", status="gated")
    grant = m("runs.ToolGrant").create(tenant=tenant, tool_name="issue_refund", agent=agent, requires_approval=True)
    escalation = m("escalations.Escalation").create(
        tenant=tenant, run=run, kind="tool_call", tool_use_id="toolu_1", tool_name="issue_refund", arguments={"amount": "5"},
        arguments_sha256="a" * 64, gate_reason="needs approval", sla_due_at=now + timedelta(hours=1), expires_at=now + timedelta(days=1),
    )
    reservation = m("budgets.Reservation").create(tenant=tenant, run=run, user_id=user.pk, model="claude-haiku-4-5",
                                                  amount=Decimal("0.5"), day=date(2026, 11, 18), status="settled")
    open_reservation = m("budgets.Reservation").create(tenant=tenant, run=run, user_id=None, model="claude-haiku-4-5",
                                                       amount=Decimal("0.25"), day=date(2026, 11, 18))
    entry = m("budgets.SpendEntry").create(
        tenant=tenant, run=run, reservation_id=reservation.pk, response_id="msg_1", user=user, agent=agent, prompt_version_id=7,
        model="claude-haiku-4-5", input_tokens=100, output_tokens=20, cost=Decimal("0.0123"), day=date(2026, 11, 18),
    )
    orphan_entry = m("budgets.SpendEntry").create(  # a ledger row whose run was deleted (SET_NULL)
        tenant=tenant, run=None, agent=None, model="claude-haiku-4-5", cost=Decimal("0.001"), day=date(2026, 11, 17), is_demo=True,
    )
    estimate = m("budgets.AgentEstimate").create(tenant=tenant, agent=other_agent, input_tokens=1000, output_tokens=100, runs_per_day=3)
    return {
        "user": user.pk, "tier": tier.pk, "tenant": tenant.pk, "membership": membership.pk, "key": key.pk, "agent": agent.pk,
        "other_agent": other_agent.pk, "run": run.pk, "message": message.pk, "call": call.pk, "grant": grant.pk,
        "escalation": escalation.pk, "reservation": reservation.pk, "open_reservation": open_reservation.pk,
        "entry": entry.pk, "orphan_entry": orphan_entry.pk, "estimate": estimate.pk,
    }


def _row(table: str, pk: int, columns: str) -> tuple[Any, ...]:
    with connection.cursor() as cur:
        cur.execute(f"SELECT {columns} FROM {table} WHERE id = %s", [pk])  # noqa: S608 - fixed names in this file
        row = cur.fetchone()
    assert row is not None, f"{table} row {pk} is gone"
    return tuple(row)


def _foreign_keys_to(table: str, referenced: str) -> list[str]:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT conname FROM pg_constraint WHERE contype = 'f' AND conrelid = %s::regclass AND confrelid = %s::regclass",
            [table, referenced],
        )
        return [r[0] for r in cur.fetchall()]


def test_a_populated_database_migrates_forward_without_losing_a_row() -> None:
    latest = _executor().loader.graph.leaf_nodes()
    try:
        ids = _populate(_migrate(_targets_before()))
        assert _foreign_keys_to("budgets_spendentry", "runs_run")  # the state before really had them
        apps = _migrate(latest)
    finally:
        _migrate(latest)
        ensure_model_prices()

    # Budgets rows keep every id, now as plain columns (the models read them as such).
    Reservation, SpendEntry, AgentEstimate = (apps.get_model("budgets", n) for n in ("Reservation", "SpendEntry", "AgentEstimate"))
    res = Reservation._base_manager.get(pk=ids["reservation"])
    assert (res.tenant_id, res.run_id, res.user_id, res.amount, res.status) == (ids["tenant"], ids["run"], ids["user"], Decimal("0.5"), "settled")
    assert Reservation._base_manager.get(pk=ids["open_reservation"]).run_id == ids["run"]
    entry = SpendEntry._base_manager.get(pk=ids["entry"])
    assert (entry.run_id, entry.agent_id, entry.user_id, entry.reservation_id, entry.prompt_version_id, entry.cost) == (
        ids["run"], ids["agent"], ids["user"], ids["reservation"], 7, Decimal("0.0123"))
    orphan = SpendEntry._base_manager.get(pk=ids["orphan_entry"])
    assert (orphan.run_id, orphan.agent_id, orphan.is_demo) == (None, None, True)
    est = AgentEstimate._base_manager.get(pk=ids["estimate"])
    assert (est.agent_id, est.input_tokens, est.runs_per_day) == (ids["other_agent"], 1000, 3)

    # The other apps' rows and their references are untouched.
    assert _row("tenants_tenant", ids["tenant"], "slug, tier_id") == ("migrated-co", ids["tier"])
    assert _row("tenants_membership", ids["membership"], "user_id, tenant_id, role") == (ids["user"], ids["tenant"], "admin")
    assert _row("tenants_apikey", ids["key"], "tenant_id, prefix") == (ids["tenant"], "ao_mig")
    assert _row("runs_run", ids["run"], "tenant_id, agent_id, submitted_by_id, api_key_id, prompt_version_id, cost") == (
        ids["tenant"], ids["agent"], ids["user"], ids["key"], 7, Decimal("0.0123"))
    assert _row("runs_message", ids["message"], "run_id, seq") == (ids["run"], 0)
    assert _row("runs_toolcall", ids["call"], "run_id, tool_use_id, status") == (ids["run"], "toolu_1", "gated")
    assert _row("runs_toolgrant", ids["grant"], "agent_id, tool_name, requires_approval") == (ids["agent"], "issue_refund", True)
    # Escalations moved to their own app state-only: the table kept its name.
    assert _row("runs_escalation", ids["escalation"], "run_id, tool_use_id, status") == (ids["run"], "toolu_1", "pending")

    # Budgets no longer holds foreign keys into the runs app's tables.
    for table in ("budgets_reservation", "budgets_spendentry", "budgets_agentestimate"):
        assert _foreign_keys_to(table, "runs_run") == [] and _foreign_keys_to(table, "runs_agent") == []
