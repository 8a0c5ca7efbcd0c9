"""Money and side effects with real ``rqworker`` processes on PostgreSQL and Redis.

* a crash (kill -9) between a tool's start and its finish: a tool that is not idempotent is never
  run again by itself (an ``outcome_unknown`` escalation; the run ends after the decision); an
  idempotent one is run again under the same idempotency key;
* a call that falls back to a dearer model under a tight task cap never passes the cap.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from django.db.models import Sum

from agentops.escalations.models import Escalation, EscalationStatus
from agentops.escalations.services import escalation_decide
from budgets.models import Reservation, SpendEntry
from runs.models import Agent, Run, RunStatus, ToolCall, ToolCallStatus, ToolGrant
from runs.services import enqueue_run_now, reconcile_runs
from tests.runtime import crash_tools
from tests.runtime.conftest import assert_log_consistent, make_run
from tests.workers import kill_tree, start_worker, stop, wait_for, workers

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

TOOLS_ENV = {"AGENTOPS_TOOL_MODULES": "tests.runtime.crash_tools"}


def _scenario(tmp_path: Path, tool: str) -> str:
    path = tmp_path / f"{tool}.json"
    path.write_text(json.dumps({"steps": [
        {"content": [{"type": "tool_use", "name": tool, "input": {"note": "refund 40.00 on TX-5001"}}]},
        {"content": [{"type": "text", "text": "Noted."}]},
    ]}))
    return str(path)


@pytest.fixture
def crash_agent(tenant, tier_generous):  # type: ignore[no-untyped-def]
    agent = Agent.objects.create(tenant=tenant, name="ledger", system_prompt="You keep the ledger.", model="claude-sonnet-4-6",
                                 tools=["post_ledger_note", "upsert_ticket_note"], max_tokens=256)
    for name in agent.tools:
        ToolGrant.objects.create(tenant=tenant, tool_name=name)
    return agent


def _terminal(run: Run) -> bool:
    run.refresh_from_db()
    return run.is_terminal


def _kill_mid_tool(run: Run) -> None:
    """Start a worker, let the tool start (and block), then kill -9 the worker and its horse."""
    r = crash_tools.conn()
    r.set(f"crashtools:block:{run.pk}", 1)
    victim = start_worker("runs", **TOOLS_ENV)
    try:
        enqueue_run_now(run)
        wait_for(lambda: len(crash_tools.calls(run.pk)) == 1, timeout=60, message="the tool to start")
        assert ToolCall.objects.get(run=run).status == ToolCallStatus.STARTED
        kill_tree(victim)
        victim.wait(timeout=10)
    finally:
        stop(victim)
        r.delete(f"crashtools:block:{run.pk}")
    assert crash_tools.effects(run.pk) == []  # cut off between start and finish


def _recover(run: Run) -> None:
    """The reconciler hands the dead worker's run to a new one once the lease expires."""
    wait_for(lambda: reconcile_runs()["expired_leases"] >= 1, timeout=30, interval=0.5, message="lease expiry")


def _settled(run: Run) -> bool:
    """The new worker is done with the run: it waits for a human, or it ended."""
    run.refresh_from_db()
    return run.status == RunStatus.AWAITING_APPROVAL or run.is_terminal


def test_a_crash_mid_tool_on_a_non_idempotent_tool_waits_for_a_human_and_never_repeats_it(crash_agent, tmp_path, members):
    run = make_run(crash_agent, _scenario(tmp_path, "post_ledger_note"))
    _kill_mid_tool(run)
    with workers(1, "runs", "default", **TOOLS_ENV):
        _recover(run)
        wait_for(lambda: _settled(run), timeout=60, message="the new worker to take the run")
        assert len(crash_tools.calls(run.pk)) == 1  # not executed again by the new worker
        assert run.status == RunStatus.AWAITING_APPROVAL, run.status
        escalation = Escalation.objects.get(run=run, kind=Escalation.KIND_OUTCOME_UNKNOWN)
        assert escalation.status == EscalationStatus.PENDING and escalation.tool_name == "post_ledger_note"
        assert ToolCall.objects.get(run=run).status == ToolCallStatus.OUTCOME_UNKNOWN
        # The operator checked the ledger: the note was posted. Mark it done with that result.
        escalation_decide(escalation_id=escalation.pk, tenant=run.tenant, decision="mark_done", comment="Seen in the ledger.",
                          actor=members["operator"], result='{"status": "posted"}')
        wait_for(lambda: _terminal(run), timeout=60, message="the run to finish after the decision")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, (run.outcome, run.error_message)
    assert len(crash_tools.calls(run.pk)) == 1  # no duplicate side effect
    call = ToolCall.objects.get(run=run)
    assert (call.status, call.result) == (ToolCallStatus.SUCCEEDED, '{"status": "posted"}')
    assert not Reservation.objects.filter(run_id=run.pk, status="open").exists()
    assert_log_consistent(run)


def test_failing_an_unknown_outcome_ends_the_run_without_repeating_the_call(crash_agent, tmp_path, members):
    run = make_run(crash_agent, _scenario(tmp_path, "post_ledger_note"))
    _kill_mid_tool(run)
    with workers(1, "runs", "default", **TOOLS_ENV):
        _recover(run)
        wait_for(lambda: _settled(run), timeout=60, message="the new worker to take the run")
        assert len(crash_tools.calls(run.pk)) == 1
        escalation = Escalation.objects.get(run=run, kind=Escalation.KIND_OUTCOME_UNKNOWN)
        escalation_decide(escalation_id=escalation.pk, tenant=run.tenant, decision="fail", comment="Cannot tell; a person follows up.",
                          actor=members["operator"])
        wait_for(lambda: _terminal(run), timeout=60, message="the run to stop")
    run.refresh_from_db()
    assert (run.status, run.outcome) == (RunStatus.FAILED, "outcome_unknown")
    assert len(crash_tools.calls(run.pk)) == 1
    assert ToolCall.objects.get(run=run).error_class == "outcome_unknown"
    assert_log_consistent(run)


def test_a_crash_mid_tool_on_an_idempotent_tool_reruns_it_with_the_same_key(crash_agent, tmp_path):
    run = make_run(crash_agent, _scenario(tmp_path, "upsert_ticket_note"))
    _kill_mid_tool(run)
    with workers(1, "runs", "default", **TOOLS_ENV):
        _recover(run)
        wait_for(lambda: _terminal(run), timeout=60, message="the run to finish by itself")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, (run.outcome, run.error_message)
    executions = crash_tools.calls(run.pk)
    assert len(executions) == 2  # started, cut off, run again
    call = ToolCall.objects.get(run=run)
    key = f"{run.pk}:{call.tool_use_id}"
    assert {e["key"] for e in executions} == {key}  # the same idempotency key both times
    assert crash_tools.effects(run.pk) == [key]
    assert not Escalation.objects.filter(run=run).exists()
    assert run.events.filter(type="tool_reexecuted").exists()
    assert_log_consistent(run)


def test_a_fallback_call_under_a_tight_task_cap_never_passes_the_cap(tenant, tier_generous):
    """Haiku primary, Opus fallback: the reservation covers Opus, so the cap holds."""
    system = "You answer billing questions. " * 100  # ~3 KB: a ~1,000-token input bound
    agent = Agent.objects.create(tenant=tenant, name="cheap", system_prompt=system, model="claude-haiku-4-5",
                                 fallback_model="claude-opus-4-5", max_tokens=1200, task_cost_cap=Decimal("0.01"))
    roomy = Agent.objects.create(tenant=tenant, name="roomy", system_prompt=system, model="claude-haiku-4-5",
                                 fallback_model="claude-opus-4-5", max_tokens=1200, task_cost_cap=Decimal("0.05"))
    tight_run, roomy_run = make_run(agent, "fallback_to_opus"), make_run(roomy, "fallback_to_opus")
    with workers(1, "runs"):
        enqueue_run_now(tight_run)
        enqueue_run_now(roomy_run)
        wait_for(lambda: _terminal(tight_run) and _terminal(roomy_run), timeout=60, message="both runs")
    for run, cap in ((tight_run, Decimal("0.01")), (roomy_run, Decimal("0.05"))):
        spent = SpendEntry.objects.filter(run_id=run.pk).aggregate(s=Sum("cost"))["s"] or Decimal(0)
        assert spent <= cap, (run.agent.name, spent, cap)
        assert run.cost == spent
        assert not Reservation.objects.filter(run_id=run.pk, status="open").exists()
    # The tight cap cannot hold an Opus call: refused before any token is spent.
    assert (tight_run.status, tight_run.outcome) == (RunStatus.CAPPED, "task")
    # The roomy one fell back and was charged Opus prices, within its reservation and cap.
    assert roomy_run.status == RunStatus.SUCCEEDED, (roomy_run.outcome, roomy_run.error_message)
    entry = SpendEntry.objects.get(run_id=roomy_run.pk)
    assert entry.model.startswith("claude-opus-4-5") and entry.output_tokens == 300
    assert entry.cost <= Reservation.objects.get(run_id=roomy_run.pk).amount
