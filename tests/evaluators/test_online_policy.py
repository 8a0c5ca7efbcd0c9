"""Online evaluators in the loop: flags per turn and per run, and what each agent's policy makes of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentops.escalations.models import Escalation
from agentops.escalations.services import escalation_decide
from agentops.harness.loop import drive_run
from agentops.toolbox.models import Refund
from runs.models import Run, RunStatus, ToolCall
from tests.runtime.conftest import assert_log_consistent, make_run

SCENARIOS = Path(__file__).resolve().parent.parent / "fixtures" / "scenarios"

pytestmark = pytest.mark.django_db


def _drive(run: Run) -> Run:
    drive_run(run.pk, worker_id="test-worker")
    run.refresh_from_db()
    return run


def _refund_again(agent) -> Run:  # type: ignore[no-untyped-def]
    """The demo's silent failure: TX-5001 is already refunded, so the second refund is refused with
    validation_error, and the scripted answer still says "I've refunded the duplicate charge"."""
    first = _drive(make_run(agent, "support_refund"))
    assert first.status == RunStatus.SUCCEEDED and "unsupported_claim" not in first.flags
    return _drive(make_run(agent, "support_refund"))


def test_a_claimed_refund_whose_call_failed_is_flagged_unsupported_claim(agent):
    run = _refund_again(agent)
    call = ToolCall.objects.get(run=run, tool_name="issue_refund")
    assert call.is_error and call.error_class == "validation_error"
    assert run.status == RunStatus.SUCCEEDED  # record is the default policy for this flag
    final = run.messages.order_by("-seq").first()
    assert final.role == "assistant" and "I've refunded" in final.content[0]["text"]
    assert "unsupported_claim" in final.flags and final.scores["unsupported_claim"] == 1.0
    assert run.flags == ["unsupported_claim"]
    assert Refund.objects.filter(transaction__tx_id="TX-5001").count() == 1


def test_under_the_fail_policy_the_run_ends_failed_unsupported_claim(agent):
    agent.flag_policy = {"unsupported_claim": "fail"}
    agent.save()
    run = _refund_again(agent)
    assert (run.status, run.outcome, run.error_type) == (RunStatus.FAILED, "unsupported_claim", "EvaluatorFlag")
    assert_log_consistent(run)


def test_under_the_review_policy_the_finished_run_goes_to_human_review(agent):
    agent.flag_policy = {"unsupported_claim": "review"}
    agent.save()
    run = _refund_again(agent)
    assert run.status == RunStatus.SUCCEEDED
    review = Escalation.objects.get(run=run, kind=Escalation.KIND_REVIEW)
    assert review.status == "pending" and review.arguments["flags"] == ["unsupported_claim"]
    # A run without the flag is not sent to review.
    assert not Escalation.objects.filter(kind=Escalation.KIND_REVIEW).exclude(run=run).exists()


def test_injection_holds_the_next_side_effect_by_default_and_records_when_told(agent):
    held = _drive(make_run(agent, "injection"))
    assert held.status == RunStatus.AWAITING_APPROVAL and "injection" in held.flags
    agent.flag_policy = {"injection": "record"}
    agent.save()
    recorded = _drive(make_run(agent, "injection"))
    # Nothing holds it now: the refund the injection asked for is refused only by the refund rules,
    # not gated, and the run finishes with the flag recorded.
    assert recorded.status == RunStatus.SUCCEEDED and "injection" in recorded.flags
    assert not Escalation.objects.filter(run=recorded).exists()


def test_injection_under_the_fail_policy_ends_the_run_before_the_next_model_call(agent):
    agent.flag_policy = {"injection": "fail"}
    agent.save()
    run = _drive(make_run(agent, "injection"))
    assert (run.status, run.outcome) == (RunStatus.FAILED, "injection")
    assert Refund.objects.filter(run_id=run.pk).count() == 0
    assert [m.role for m in run.messages.order_by("seq")] == ["user", "assistant", "user"]


def test_an_invalid_tool_call_is_counted_on_its_turn_and_the_run(agent):
    run = _drive(make_run(agent, "unknown_tool"))
    first = run.messages.get(seq=1)
    assert "invalid_tool_call" in first.flags and first.scores["tool_call_validity"] == 1.0
    assert "invalid_tool_call" in run.flags and run.status == RunStatus.SUCCEEDED


def test_a_hold_policy_on_any_flag_gates_the_side_effect_in_that_turn(agent):
    agent.flag_policy = {"pii": "hold"}
    agent.save()
    run = _drive(make_run(agent, str(SCENARIOS / "pii_then_refund.json")))
    assert run.status == RunStatus.AWAITING_APPROVAL
    esc = Escalation.objects.get(run=run)
    assert esc.tool_name == "issue_refund" and "pii" in esc.gate_reason
    assert Refund.objects.filter(run_id=run.pk).count() == 0
    # Without the policy the same turn executes.
    agent.flag_policy = {}
    agent.save()
    free = _drive(make_run(agent, str(SCENARIOS / "pii_then_refund.json")))
    assert free.status == RunStatus.SUCCEEDED and "pii" in free.flags


def test_a_review_is_decided_in_the_operator_inbox(agent, members, client_for):
    agent.flag_policy = {"unsupported_claim": "review"}
    agent.save()
    run = _refund_again(agent)
    review = Escalation.objects.get(run=run, kind=Escalation.KIND_REVIEW)
    operator = client_for(members["operator"])
    inbox = operator.get(f"/t/{run.tenant.slug}/escalations/").content.decode()
    assert "Review" in inbox and "unsupported_claim" in inbox
    page = operator.get(f"/t/{run.tenant.slug}/escalations/{review.pk}/").content.decode()
    assert f"Review run #{run.pk}" in page and "Mark reviewed" in page
    decided = escalation_decide(escalation_id=review.pk, tenant=run.tenant, decision="approve", comment="", actor=members["operator"],
                                arguments_sha256=review.arguments_sha256)
    assert decided.status == "approved"
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED  # a review never reopens a finished run
