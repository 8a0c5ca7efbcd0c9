"""A tool call cut off by a crash, with the harness driven in-process: the crash is simulated by
an exception no handler catches (as ``kill -9`` would stop the worker), leaving the ledger row
``started``. The real ``kill -9`` versions are in tests/runtime/test_money_workers.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from agentops.escalations.models import Escalation, EscalationStatus
from agentops.escalations.services import escalation_decide
from agentops.toolbox import services as toolbox_services
from agentops.toolbox.models import Refund
from runs.models import Run, RunStatus, ToolCall, ToolCallStatus, ToolGrant
from tenants.models import AuditEvent, Role
from tests.escalations.conftest import assert_log_consistent, drive, make_run, tool_results
from tests.runtime import crash_tools

pytestmark = pytest.mark.django_db
UNKNOWN = Escalation.KIND_OUTCOME_UNKNOWN


class Crash(BaseException):
    """Nothing in the harness catches it: the worker is gone mid-call."""
@pytest.fixture
def ledger_agent(agent, tmp_path):  # type: ignore[no-untyped-def]
    agent.tools = [*agent.tools, "post_ledger_note"]
    agent.save()
    ToolGrant.objects.create(tenant=agent.tenant, tool_name="post_ledger_note", agent=agent)
    path = tmp_path / "ledger.json"
    path.write_text(json.dumps({"steps": [
        {"content": [{"type": "tool_use", "name": "post_ledger_note", "input": {"note": "refund 40.00"}}]},
        {"content": [{"type": "text", "text": "Noted."}]},
    ]}))
    agent.scenario_path = str(path)
    return agent


@pytest.fixture
def crashing(monkeypatch):  # type: ignore[no-untyped-def]
    """The next ``n`` executions of the test tools record themselves, then the worker dies."""
    left = {"n": 0}
    real = crash_tools._run

    def run(name: str, ctx: Any, note: str) -> Any:
        if left["n"] > 0:
            left["n"] -= 1
            crash_tools.conn().rpush(f"crashtools:calls:{ctx.run_id}", json.dumps({"tool": name, "key": ctx.idempotency_key}))
            raise Crash
        return real(name, ctx, note)

    monkeypatch.setattr(crash_tools, "_run", run)
    return left


def _crash_then_recover(run: Run, crashing: dict[str, int]) -> Run:
    crashing["n"] = 1
    with pytest.raises(Crash):
        drive(run)
    assert ToolCall.objects.get(run=run).status == ToolCallStatus.STARTED
    return drive(run)  # the next worker (the lease is re-taken)


def _decide(esc: Escalation, decision: str, **kw: Any) -> Escalation:
    kw.setdefault("comment", "")
    return escalation_decide(escalation_id=esc.pk, tenant=esc.tenant, decision=decision, arguments_sha256=esc.arguments_sha256, **kw)


def test_retry_runs_the_call_again_under_the_same_key(ledger_agent, crashing, members, django_capture_on_commit_callbacks):
    run = _crash_then_recover(make_run(ledger_agent, ledger_agent.scenario_path), crashing)
    assert run.status == RunStatus.AWAITING_APPROVAL
    esc = Escalation.objects.get(run=run, kind=UNKNOWN, status=EscalationStatus.PENDING)
    assert esc.urgency == "high" and "not declared idempotent" in esc.gate_reason
    assert len(crash_tools.calls(run.pk)) == 1
    with django_capture_on_commit_callbacks(execute=True):
        _decide(esc, "retry", actor=members[Role.OPERATOR])
    run = drive(run)
    assert run.status == RunStatus.SUCCEEDED, (run.outcome, run.error_message)
    keys = [c["key"] for c in crash_tools.calls(run.pk)]
    assert len(keys) == 2 and len(set(keys)) == 1 and keys[0] == f"{run.pk}:{esc.tool_use_id}"
    assert ToolCall.objects.get(run=run).status == ToolCallStatus.SUCCEEDED
    assert AuditEvent.objects.filter(action="escalation.retry").exists()
    assert_log_consistent(run)


def test_a_retry_cut_off_again_goes_back_to_a_human(ledger_agent, crashing, members, django_capture_on_commit_callbacks):
    run = _crash_then_recover(make_run(ledger_agent, ledger_agent.scenario_path), crashing)
    esc = Escalation.objects.get(run=run, kind=UNKNOWN)
    with django_capture_on_commit_callbacks(execute=True):
        _decide(esc, "retry", actor=members[Role.OPERATOR])
    run = _crash_then_recover(Run.objects.get(pk=run.pk), crashing)
    assert run.status == RunStatus.AWAITING_APPROVAL
    esc.refresh_from_db()
    assert esc.status == EscalationStatus.PENDING and esc.decision == ""  # reopened, not retried again by itself
    assert len(crash_tools.calls(run.pk)) == 2
    with django_capture_on_commit_callbacks(execute=True):
        _decide(esc, "fail", comment="Two crashes; a person checks the ledger.", actor=members[Role.OPERATOR])
    run = drive(run)
    assert (run.status, run.outcome, run.error_type) == (RunStatus.FAILED, "outcome_unknown", "OutcomeUnknown")
    assert len(crash_tools.calls(run.pk)) == 2
    result = tool_results(run)[0]
    assert result["is_error"] and "a person checks the ledger" in result["content"]
    assert_log_consistent(run)


def test_an_outcome_unknown_takes_only_its_own_decisions(ledger_agent, crashing, members):
    run = _crash_then_recover(make_run(ledger_agent, ledger_agent.scenario_path), crashing)
    esc = Escalation.objects.get(run=run, kind=UNKNOWN)
    for decision, extra in (("approve", {}), ("reject", {"comment": "no"}), ("mark_done", {}), ("mark_done", {"result": "  "}),
                            ("explode", {})):
        with pytest.raises(ValidationError):
            _decide(esc, decision, actor=members[Role.OPERATOR], **extra)
    esc.refresh_from_db()
    assert esc.status == EscalationStatus.PENDING


def test_a_gated_call_approved_then_cut_off_gets_its_own_escalation(agent, members, monkeypatch, django_capture_on_commit_callbacks):
    run = drive(make_run(agent, "refund_over_limit"))  # refund of 900.00: over the 100.00 threshold
    gate = Escalation.objects.get(run=run, kind=Escalation.KIND_TOOL)
    with django_capture_on_commit_callbacks(execute=True):
        escalation_decide(escalation_id=gate.pk, tenant=gate.tenant, decision="approve", comment="", arguments_sha256=gate.arguments_sha256,
                          actor=members[Role.OPERATOR])

    def crash(**_kw: Any) -> None:
        raise Crash

    monkeypatch.setattr(toolbox_services, "refund_issue", crash)
    with pytest.raises(Crash):
        drive(Run.objects.get(pk=run.pk))
    monkeypatch.undo()
    run = drive(run)
    assert run.status == RunStatus.AWAITING_APPROVAL
    unknown = Escalation.objects.get(run=run, kind=UNKNOWN, tool_use_id=gate.tool_use_id)
    assert unknown.tool_name == "issue_refund" and unknown.arguments_sha256 == gate.arguments_sha256
    with django_capture_on_commit_callbacks(execute=True):
        _decide(unknown, "fail", actor=members[Role.OPERATOR])
    run = drive(run)
    assert (run.status, run.outcome) == (RunStatus.FAILED, "outcome_unknown")
    assert Refund.objects.filter(run_id=run.pk).count() == 0
    assert_log_consistent(run)


def test_the_inbox_and_the_api_show_and_decide_an_unknown_outcome(ledger_agent, crashing, members, client_for, escalations_key,
                                                                 django_capture_on_commit_callbacks):
    run = _crash_then_recover(make_run(ledger_agent, ledger_agent.scenario_path), crashing)
    esc = Escalation.objects.get(run=run, kind=UNKNOWN)
    console = client_for(members[Role.OPERATOR])
    inbox = console.get("/t/acme/escalations/").content.decode()
    assert "outcome unknown" in inbox and "post_ledger_note" in inbox
    page = console.get(f"/t/acme/escalations/{esc.pk}/").content.decode()
    for button in ('value="retry"', 'value="mark_done"', 'value="fail"', 'name="result"'):
        assert button in page
    api = Client(HTTP_AUTHORIZATION=f"Bearer {escalations_key}")
    url = f"/api/v1/escalations/{esc.pk}/decide"
    resp = api.post(url, data=json.dumps({"decision": "mark_done"}), content_type="application/json")
    assert resp.status_code == 400 and resp.json()["error"]["type"] == "invalid_request"
    with django_capture_on_commit_callbacks(execute=True):
        resp = api.post(url, data=json.dumps({"decision": "mark_done", "result": '{"status": "posted"}'}), content_type="application/json")
    assert resp.status_code == 200, resp.content
    body = resp.json()
    assert (body["kind"], body["status"], body["decision"], body["result"]) == (UNKNOWN, "approved", "mark_done", '{"status": "posted"}')
    run = drive(run)
    assert run.status == RunStatus.SUCCEEDED
    assert tool_results(run)[0]["content"] == '{"status": "posted"}'
    assert len(crash_tools.calls(run.pk)) == 1
