"""The Must-show list, end to end: runs driven in-process against the scripted Messages API (the
real SDK), calling tools on a REAL MCP server process through the harness's one tool code path."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from agentops.escalations.models import Escalation
from agentops.escalations.services import escalation_decide
from agentops.harness.loop import drive_run
from agentops.tools import registry
from runs.models import Run, RunStatus, ToolCall, ToolGrant
from tenants.models import Role
from tests.mcp.conftest import ServerProcess, register

pytestmark = pytest.mark.django_db

LOOKUP, CANCEL = "mcp__orders__lookup_order", "mcp__orders__cancel_order"


def scenario(tmp_path: Path, *calls: tuple[str, dict[str, Any]]) -> str:
    steps = [{"content": [{"type": "tool_use", "name": name, "input": args}]} for name, args in calls]
    steps.append({"content": [{"type": "text", "text": "Done."}]})
    path = tmp_path / f"scenario_{len(list(tmp_path.glob('scenario_*')))}.json"
    path.write_text(json.dumps({"description": "MCP test", "steps": steps}))
    return str(path)


def start(agent, path: str) -> Run:  # type: ignore[no-untyped-def]
    run = Run.objects.create(
        tenant=agent.tenant,
        agent=agent,
        input="Cancel order ORD-1001.",
        submitter_role=Role.OPERATOR,
        metadata={"scenario": path},
    )
    return drive(run)


def drive(run: Run) -> Run:
    drive_run(run.pk, worker_id="test-worker")
    run.refresh_from_db()
    return run


def call(run: Run, name: str) -> ToolCall:
    return ToolCall.objects.get(run=run, tool_name=name)


def result_error(c: ToolCall) -> dict[str, Any]:
    return json.loads(c.result)["error"]


def test_granted_read_tool_runs_on_the_server_and_its_result_is_evaluated(
    orders_agent, mcp_server: ServerProcess, tmp_path
):
    register(orders_agent.tenant, mcp_server.url)
    ToolGrant.objects.create(tenant=orders_agent.tenant, tool_name=LOOKUP)
    run = start(orders_agent, scenario(tmp_path, (LOOKUP, {"order_id": "ORD-1001"})))
    assert run.status == RunStatus.SUCCEEDED
    c = call(run, LOOKUP)
    assert c.status == "succeeded" and not c.is_error and c.attempts == 1
    assert json.loads(c.result)["item"] == "Pro plan (annual)"
    assert c.side_effect == "write"  # the default: never taken from the server


def test_ungranted_mcp_tool_is_refused_and_never_reaches_the_server(
    orders_agent, mcp_server: ServerProcess, tmp_path
):
    register(orders_agent.tenant, mcp_server.url)
    ToolGrant.objects.create(tenant=orders_agent.tenant, tool_name=LOOKUP)  # cancel_order is not granted
    run = start(orders_agent, scenario(tmp_path, (CANCEL, {"order_id": "ORD-1001", "reason": "asked"})))
    c = call(run, CANCEL)
    assert c.status == "refused" and c.error_class == "tool_not_granted"
    assert mcp_server.cancellations() == []


def test_allow_list_refuses_arguments_outside_it(orders_agent, mcp_server: ServerProcess, tmp_path):
    register(orders_agent.tenant, mcp_server.url)
    ToolGrant.objects.create(
        tenant=orders_agent.tenant, tool_name=CANCEL, allow={"values": {"order_id": ["ORD-1002"]}}
    )
    run = start(
        orders_agent,
        scenario(
            tmp_path,
            (CANCEL, {"order_id": "ORD-1001", "reason": "asked"}),
            (CANCEL, {"order_id": "ORD-1002", "reason": "asked"}),
        ),
    )
    first, second = ToolCall.objects.filter(run=run, tool_name=CANCEL).order_by("id")
    assert first.status == "refused" and first.error_class == "permission_denied"
    assert "order_id is not one of the values the grant allows" in result_error(first)["message"]
    assert second.status == "succeeded"
    assert [json.loads(line)["order_id"] for line in mcp_server.cancellations()] == ["ORD-1002"]


def test_gated_call_escalates_and_once_approved_executes_exactly_once(
    orders_agent, mcp_server: ServerProcess, tmp_path, django_capture_on_commit_callbacks
):
    server = register(orders_agent.tenant, mcp_server.url)
    ToolGrant.objects.create(tenant=orders_agent.tenant, tool_name=CANCEL, requires_approval=True)
    run = start(orders_agent, scenario(tmp_path, (CANCEL, {"order_id": "ORD-1001", "reason": "asked"})))
    assert run.status == RunStatus.AWAITING_APPROVAL
    esc = Escalation.objects.get(run=run)
    assert esc.tool_name == CANCEL and esc.status == "pending" and mcp_server.cancellations() == []
    with django_capture_on_commit_callbacks(execute=True):
        escalation_decide(
            escalation_id=esc.pk, tenant=run.tenant, decision="approve", comment="OK to cancel."
        )
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED  # resumed, waiting for a worker
    run = drive(run)
    assert run.status == RunStatus.SUCCEEDED
    assert len(mcp_server.cancellations()) == 1
    # Driving again (a duplicate job) never repeats it: the ledger answers.
    drive_run(run.pk, worker_id="again")
    assert len(mcp_server.cancellations()) == 1
    assert (
        call(run, CANCEL).status == "succeeded"
        and server.tools.get(remote_name="cancel_order").side_effect == "write"
    )


def test_server_down_is_a_transient_error_retried_then_the_server_back_answers(
    orders_agent, mcp_server: ServerProcess, tmp_path
):
    register(orders_agent.tenant, mcp_server.url)
    ToolGrant.objects.create(tenant=orders_agent.tenant, tool_name=LOOKUP)
    ToolGrant.objects.create(tenant=orders_agent.tenant, tool_name=CANCEL)
    path = scenario(
        tmp_path, (LOOKUP, {"order_id": "ORD-1001"}), (CANCEL, {"order_id": "ORD-1001", "reason": "asked"})
    )
    mcp_server.stop()
    down = start(orders_agent, path)
    assert down.status == RunStatus.SUCCEEDED  # the model got the errors and finished
    lookup, cancel = call(down, LOOKUP), call(down, CANCEL)
    for c in (lookup, cancel):
        assert c.status == "error" and c.error_class == "transient_error" and c.attempts == 3, (
            c.tool_name,
            c.attempts,
        )
        assert "unreachable" in result_error(c)["message"]
    mcp_server.start()
    up = start(orders_agent, path)
    assert call(up, LOOKUP).status == "succeeded" and call(up, CANCEL).status == "succeeded"
    assert len(mcp_server.cancellations()) == 1


def test_hallucinated_name_and_bad_arguments_get_structured_errors(
    orders_agent, mcp_server: ServerProcess, tmp_path
):
    register(orders_agent.tenant, mcp_server.url)
    ToolGrant.objects.create(tenant=orders_agent.tenant, tool_name=LOOKUP)
    run = start(
        orders_agent,
        scenario(
            tmp_path,
            ("mcp__orders__drop_tables", {}),
            (LOOKUP, {"order_id": 7, "extra": "x"}),
            (LOOKUP, {"order_id": "ORD-404"}),
        ),
    )
    refused = call(run, "mcp__orders__drop_tables")
    assert refused.status == "refused" and refused.error_class == "unknown_tool"
    invalid, missing = ToolCall.objects.filter(run=run, tool_name=LOOKUP).order_by("id")
    assert (
        invalid.error_class == "validation_error"
        and "unexpected property 'extra'" in result_error(invalid)["message"]
    )
    # The server's own isError result: a deterministic tool error, not retried.
    assert missing.status == "error" and missing.error_class == "tool_error" and missing.attempts == 1
    assert "no order ORD-404" in result_error(missing)["message"]


def test_stdio_server_tools_run_through_the_same_path(orders_agent, stdio_command, tmp_path):
    from agentops.mcp import services

    server = services.server_register(
        tenant=orders_agent.tenant, actor=None, name="orders", transport="stdio", command_key="demo-orders"
    )
    counts = services.server_refresh(tenant=orders_agent.tenant, actor=None, server=server)
    assert counts["added"] == 2
    ToolGrant.objects.create(tenant=orders_agent.tenant, tool_name=LOOKUP)
    run = start(orders_agent, scenario(tmp_path, (LOOKUP, {"order_id": "ORD-1003"})))
    assert call(run, LOOKUP).status == "succeeded" and "Support add-on" in call(run, LOOKUP).result


def test_an_mcp_result_passes_the_online_evaluators_and_injected_instructions_hold_the_next_write(
    orders_agent, mcp_server: ServerProcess, tmp_path
):
    register(orders_agent.tenant, mcp_server.url)
    ToolGrant.objects.create(tenant=orders_agent.tenant, tool_name=LOOKUP)
    ToolGrant.objects.create(tenant=orders_agent.tenant, tool_name=CANCEL)  # no approval needed, normally
    run = start(
        orders_agent,
        scenario(
            tmp_path, (LOOKUP, {"order_id": "ORD-1004"}), (CANCEL, {"order_id": "ORD-1004", "reason": "note"})
        ),
    )
    assert "injection" in call(run, LOOKUP).flags
    assert run.status == RunStatus.AWAITING_APPROVAL
    assert "Injected instructions" in Escalation.objects.get(run=run, tool_name=CANCEL).gate_reason
    assert mcp_server.cancellations() == []


def test_a_write_whose_connection_was_refused_is_retried_and_lands_once_when_the_server_is_back(
    orders_agent, mcp_server: ServerProcess
):
    register(orders_agent.tenant, mcp_server.url)
    spec = registry.get_tool(CANCEL, orders_agent.tenant)
    assert spec.side_effect == "write" and not spec.idempotent
    mcp_server.stop()
    # Bring it back while execute() backs off: the refused attempts never reached it, so they are retried.
    threading.Thread(target=mcp_server.start, daemon=True).start()
    ctx = registry.ToolContext(
        tenant_id=orders_agent.tenant_id, run_id=1, agent_id=orders_agent.pk, tool_use_id="toolu_back"
    )
    outcome = registry.execute(
        spec, ctx, {"order_id": "ORD-1003", "reason": "back"}, max_attempts=8, backoff_s=0.3
    )
    assert not outcome.is_error, outcome.content
    assert outcome.attempts > 1
    assert len(mcp_server.cancellations()) == 1
