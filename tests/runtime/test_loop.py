"""The agent loop driven in-process against the scripted Messages API through the real SDK."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from agentops.escalations.models import Escalation
from agentops.harness.loop import drive_run
from agentops.toolbox.models import Refund
from runs.models import Message, Run, RunStatus, Span, ToolCall
from tests.runtime.conftest import assert_log_consistent, make_run

pytestmark = pytest.mark.django_db


def _drive(run: Run) -> Run:
    drive_run(run.pk, worker_id="test-worker")
    run.refresh_from_db()
    return run


def _spend_count(run: Run) -> int:
    from budgets.models import SpendEntry

    return SpendEntry.objects.filter(run_id=run.pk).count()


def _results(run: Run) -> list[dict]:
    return [b for m in run.messages.filter(role="user") for b in m.content if b.get("type") == "tool_result"]


def test_plain_answer_succeeds_and_is_traced(agent):
    run = _drive(make_run(agent, "default"))
    assert run.status == RunStatus.SUCCEEDED and run.outcome == "end_turn"
    assert run.result
    assert [m.role for m in run.messages.order_by("seq")] == ["user", "assistant"]
    assert run.cost > 0 and _spend_count(run) == 1
    names = list(Span.objects.filter(run=run).values_list("name", flat=True))
    assert "invoke_agent support" in names and "chat claude-sonnet-4-6" in names
    chat = Span.objects.get(run=run, name__startswith="chat")
    assert chat.attributes["gen_ai.provider.name"] == "anthropic"
    assert chat.attributes["gen_ai.usage.output_tokens"] > 0
    assert run.lease_owner == "" and run.finished_at is not None


def test_tool_loop_executes_each_call_once_and_keeps_the_log_consistent(agent):
    run = _drive(make_run(agent, "support_refund"))
    assert run.status == RunStatus.SUCCEEDED, (run.outcome, run.error_message)
    assert Refund.objects.filter(run_id=run.pk).count() == 1
    assert ToolCall.objects.filter(run=run, status="succeeded").count() == 3
    assert_log_consistent(run)
    names = [s.name for s in Span.objects.filter(run=run)]
    assert "execute_tool issue_refund" in names


def test_driving_a_finished_run_again_repeats_nothing(agent):
    run = _drive(make_run(agent, "support_refund"))
    Run.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED)
    assert drive_run(run.pk, worker_id="w2") == RunStatus.SUCCEEDED
    assert Refund.objects.filter(run_id=run.pk).count() == 1
    assert Message.objects.filter(run=run).count() == 8


def test_repetition_breaker_stops_without_another_call(agent):
    run = _drive(make_run(agent, "loop_forever"))
    assert run.status == RunStatus.FAILED and run.outcome == "repetition"
    # Calls 1 and 2 executed; the third identical call trips the breaker before executing.
    assert ToolCall.objects.filter(run=run, status="succeeded").count() == 2
    assert _spend_count(run) == 3 == run.iterations
    assert_log_consistent(run)


def test_iteration_cap_stops_exactly_at_the_cap(agent):
    agent.iteration_cap = 4
    agent.save()
    run = _drive(make_run(agent, "never_ends"))
    assert run.status == RunStatus.FAILED and run.outcome == "max_iterations"
    assert _spend_count(run) == 4 == run.iterations
    assert_log_consistent(run)


@pytest.mark.parametrize("scenario,error", [("unknown_tool", "unknown_tool"), ("invalid_args", "validation_error")])
def test_hallucinated_tools_and_bad_arguments_get_structured_errors(agent, scenario, error):
    run = _drive(make_run(agent, scenario))
    assert run.status == RunStatus.SUCCEEDED
    assert Refund.objects.filter(run_id=run.pk).count() == 0
    [result] = _results(run)
    assert result["is_error"] is True
    assert json.loads(result["content"])["error"]["type"] == error
    assert_log_consistent(run)


def test_ungranted_tool_is_never_executed(agent):
    from runs.models import ToolGrant

    ToolGrant.objects.filter(tenant=agent.tenant, tool_name="issue_refund").delete()
    run = _drive(make_run(agent, "support_refund"))
    assert Refund.objects.filter(run_id=run.pk).count() == 0
    refund_result = [r for r in _results(run) if "not available" in r["content"]]
    assert refund_result and refund_result[0]["is_error"]
    assert ToolCall.objects.get(run=run, tool_name="issue_refund").error_class == "tool_not_granted"


def test_injected_instruction_in_a_tool_result_never_executes_a_refund(agent):
    run = _drive(make_run(agent, "injection"))
    assert Refund.objects.filter(run_id=run.pk).count() == 0
    # The tool result that carried the injection is flagged, and the refund that followed is held.
    assert run.status == RunStatus.AWAITING_APPROVAL
    esc = Escalation.objects.get(run=run)
    assert "Injected instructions" in esc.gate_reason
    assert any("injection" in m.flags for m in run.messages.filter(role="user"))


def test_truncated_tool_call_is_never_executed(agent):
    run = _drive(make_run(agent, "max_tokens_tool"))
    assert run.status == RunStatus.SUCCEEDED
    call = ToolCall.objects.get(run=run)
    assert call.error_class == "truncated_tool_call" and call.status == "refused"
    assert_log_consistent(run)


def test_rate_limits_are_retried_by_the_sdk_only(agent):
    run = _drive(make_run(agent, "rate_limited"))
    assert run.status == RunStatus.SUCCEEDED
    assert run.reschedules == 0 and _spend_count(run) == 1


def test_exhausted_retries_reschedule_the_run_instead_of_failing(agent):
    agent.fallback_model = ""  # with a fallback, an overload is absorbed by the fallback model instead
    agent.save()
    run = make_run(agent, "outage")
    assert drive_run(run.pk, worker_id="w") == "rescheduled"
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and run.reschedules == 1 and run.not_before > timezone.now()
    assert _spend_count(run) == 0
    # Not due yet: no worker may take it.
    assert drive_run(run.pk, worker_id="w") == "not_leased"
    Run.objects.filter(pk=run.pk).update(not_before=None)
    run = _drive(run)
    assert run.status == RunStatus.SUCCEEDED and _spend_count(run) == 1


def test_overload_falls_back_to_the_fallback_model(agent):
    run = _drive(make_run(agent, "overloaded"))
    assert run.status == RunStatus.SUCCEEDED
    assert run.model_used == agent.fallback_model


def test_deterministic_api_error_fails_the_run(agent):
    run = _drive(make_run(agent, "bad_request"))
    assert run.status == RunStatus.FAILED and run.outcome == "model_error"
    assert run.error_type == "invalid_request_error"


def test_gated_call_waits_and_releases_the_worker(agent):
    from runs.models import ToolGrant

    ToolGrant.objects.filter(tenant=agent.tenant, tool_name="issue_refund").update(approval_over={"amount": "100.00"})
    run = _drive(make_run(agent, "refund_over_limit"))
    assert run.status == RunStatus.AWAITING_APPROVAL and run.lease_owner == ""
    esc = Escalation.objects.get(run=run)
    assert esc.status == "pending" and esc.tool_name == "issue_refund" and "over the approval threshold" in esc.gate_reason
    assert Refund.objects.filter(run_id=run.pk).count() == 0


def test_only_one_worker_holds_the_lease(agent):
    from agentops.harness import lease

    run = make_run(agent, "default")
    assert lease.acquire(run.pk, "a") is not None
    assert lease.acquire(run.pk, "b") is None
    assert drive_run(run.pk, worker_id="b") == "not_leased"


def test_cancel_takes_effect_before_the_next_model_call(agent):
    from runs.services import run_cancel

    run = make_run(agent, "never_ends")
    Run.objects.filter(pk=run.pk).update(cancel_requested=True)
    run = _drive(run)
    assert run.status == RunStatus.CANCELLED and _spend_count(run) == 0
    run2 = make_run(agent, "default")
    run_cancel(run=run2)
    run2.refresh_from_db()
    assert run2.status == RunStatus.CANCELLED


def test_kill_switch_pauses_and_refuses(agent):
    from runs.services import RunRefused, kill_switch_set, run_submit

    kill_switch_set(tenant=agent.tenant, actor=None, enabled=True, agent=agent)
    with pytest.raises(RunRefused):
        run_submit(tenant=agent.tenant, agent=agent, input="hi", role="operator")
    run = make_run(agent, "default")
    run = _drive(run)
    assert run.status == RunStatus.PAUSED and run.outcome == "kill_switch"


def test_cancelling_a_waiting_run_answers_its_pending_tool_use(agent):
    from runs.models import ToolGrant
    from runs.services import run_cancel

    ToolGrant.objects.filter(tenant=agent.tenant, tool_name="issue_refund").update(requires_approval=True)
    run = _drive(make_run(agent, "refund_over_limit"))
    assert run.status == RunStatus.AWAITING_APPROVAL
    run_cancel(run=run)
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert Escalation.objects.get(run=run).status == "cancelled"
    assert_log_consistent(run)
    last = run.messages.order_by("-seq").first()
    assert last.role == "user" and json.loads(last.content[0]["content"])["error"]["type"] == "run_cancelled"
    assert Refund.objects.filter(run_id=run.pk).count() == 0


def test_parallel_tool_calls_in_one_turn_each_get_a_result(agent):
    run = _drive(make_run(agent, "parallel_tools"))
    assert run.status == RunStatus.SUCCEEDED, (run.outcome, run.error_type, run.error_message)
    assert ToolCall.objects.filter(run=run).count() == 2
    assert_log_consistent(run)
