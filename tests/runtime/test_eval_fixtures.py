"""An eval run never executes a side-effecting tool for real: fixtures answer, or a no_fixture error."""

from __future__ import annotations

import json

import pytest

from agentops.escalations.models import Escalation
from agentops.harness.loop import drive_run
from agentops.toolbox.models import Refund, SentEmail
from runs.models import Run, RunStatus, ToolCall
from tests.runtime.conftest import assert_log_consistent

pytestmark = pytest.mark.django_db


def _eval_run(agent, scenario: str, fixtures: list) -> Run:  # type: ignore[no-untyped-def]
    run = Run.objects.create(tenant=agent.tenant, agent=agent, input="Help the customer.",
                             metadata={"scenario": scenario, "eval": {"fixtures": fixtures}})
    drive_run(run.pk, worker_id="test-worker")
    run.refresh_from_db()
    return run


def _result(run: Run, tool: str) -> ToolCall:
    return ToolCall.objects.get(run=run, tool_name=tool)


def test_a_write_tool_answers_from_its_fixture_and_never_runs(agent):
    fixture = {"status": "refunded", "refund_id": "RF-FIXTURE", "amount": "40.00"}
    run = _eval_run(agent, "support_refund", [
        {"tool": "issue_refund", "arguments": {"transaction_id": "TX-5001"}, "result": fixture},
        {"tool": "lookup_account", "result": {"account_id": "ACC-1001", "name": "Fixture Person"}},
    ])
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    assert Refund.objects.filter(run_id=run.pk).count() == 0
    call = _result(run, "issue_refund")
    assert json.loads(call.result) == fixture and not call.is_error
    # A read tool with a fixture answers from it; one without runs for real.
    assert json.loads(_result(run, "lookup_account").result)["name"] == "Fixture Person"
    assert "TX-" in _result(run, "search_transactions").result
    assert_log_consistent(run)


def test_a_write_tool_without_a_matching_fixture_gets_a_clear_error(agent):
    run = _eval_run(agent, "support_refund", [{"tool": "issue_refund", "arguments": {"transaction_id": "TX-9999"}, "result": "x"}])
    call = _result(run, "issue_refund")
    assert call.is_error and call.error_class == "no_fixture"
    assert "answers only from the case's fixtures" in json.loads(call.result)["error"]["message"]
    assert Refund.objects.filter(run_id=run.pk).count() == 0


def test_an_eval_run_is_never_gated_and_sends_no_email(agent):
    agent.tenant.gate_irreversible_tools = True
    agent.tenant.save()
    run = _eval_run(agent, "email_customer", [])
    assert run.status == RunStatus.SUCCEEDED
    assert SentEmail.objects.count() == 0 and Escalation.objects.count() == 0
    assert _result(run, "send_email").error_class == "no_fixture"
    handoff = _eval_run(agent, "handoff", [{"tool": "escalate_to_human", "result": {"decision": "approved"}}])
    assert handoff.status == RunStatus.SUCCEEDED and Escalation.objects.count() == 0
    assert json.loads(_result(handoff, "escalate_to_human").result) == {"decision": "approved"}
