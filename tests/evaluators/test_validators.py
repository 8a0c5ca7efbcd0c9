"""Output validators on the final answer: failures go back to the model as a user turn, up to N retries."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from agentops.harness.evaluators import validators
from agentops.harness.loop import drive_run
from agentops.harness.prompting import ResolvedPrompt
from budgets.models import SpendEntry
from runs.models import Agent, Run, RunStatus
from tests.runtime.conftest import make_run

pytestmark = pytest.mark.django_db
SCENARIOS = Path(__file__).resolve().parent.parent / "fixtures" / "scenarios"
SCHEMA = {"type": "object", "required": ["ticket", "status"], "properties": {"ticket": {"type": "string", "pattern": "^TX-"}}}


@pytest.fixture
def with_validators(monkeypatch):  # type: ignore[no-untyped-def]
    """Until the prompts app lands, validators reach the loop through Agent.resolve_prompt()."""
    def use(config, retries=2):  # type: ignore[no-untyped-def]
        original = Agent.resolve_prompt

        def resolve(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            return replace(original(self, *args, **kwargs), validators=tuple(config), params={"validation_retries": retries})

        monkeypatch.setattr(Agent, "resolve_prompt", resolve)
    return use


def _drive(run: Run) -> Run:
    drive_run(run.pk, worker_id="test-worker")
    run.refresh_from_db()
    return run


def test_a_failing_answer_is_fed_back_and_the_retry_passes(agent, with_validators):
    with_validators([{"type": "json_schema", "schema": SCHEMA}, {"type": "must_contain", "text": "TX-"}])
    run = _drive(make_run(agent, str(SCENARIOS / "validated_answer.json")))
    assert run.status == RunStatus.SUCCEEDED, (run.outcome, run.error_message)
    roles = [(m.role, m.flags) for m in run.messages.order_by("seq")]
    assert roles == [("user", []), ("assistant", []), ("user", ["validation_failed"]), ("assistant", [])]
    feedback = run.messages.get(seq=2).content[0]["text"]
    assert "not valid JSON" in feedback and "must contain 'TX-'" in feedback
    # Each attempt is a model turn: counted as an iteration and as spend.
    assert run.iterations == 2 and SpendEntry.objects.filter(run_id=run.pk).count() == 2
    assert '"TX-5001"' in run.result


def test_when_retries_run_out_the_run_fails_validation_with_every_attempt_kept(agent, with_validators):
    with_validators([{"type": "regex", "pattern": r"^Ticket #\d+"}], retries=2)
    run = _drive(make_run(agent, "default"))
    assert (run.status, run.outcome, run.error_type) == (RunStatus.FAILED, "validation", "OutputValidation")
    assert [m.role for m in run.messages.order_by("seq")] == ["user", "assistant", "user", "assistant", "user", "assistant"]
    assert run.iterations == 3 and "after 2 retries" in run.error_message


def test_a_judge_validator_is_a_priced_model_call(agent, with_validators):
    with_validators([{"type": "judge", "rubric": "Cites the refund policy.", "threshold": 0.7, "scenario": str(SCENARIOS / "judge_low.json")}], retries=0)
    run = _drive(make_run(agent, "default"))
    assert (run.status, run.outcome) == (RunStatus.FAILED, "validation")
    assert "scored the answer 0.20" in run.error_message
    assert SpendEntry.objects.filter(run_id=run.pk).count() == 2  # the answer and the judge

    with_validators([{"type": "judge", "rubric": "Cites the refund policy.", "threshold": 0.7, "scenario": str(SCENARIOS / "judge_high.json")}], retries=0)
    assert _drive(make_run(agent, "default")).status == RunStatus.SUCCEEDED


@pytest.mark.parametrize(("config", "problem"), [
    ([{"type": "nope"}], "type must be one of"),
    ([{"type": "regex", "pattern": "("}], "does not compile"),
    ([{"type": "json_schema", "schema": {"type": 3}}], "invalid JSON schema"),
    ([{"type": "judge", "rubric": "x", "threshold": 2}], "between 0 and 1"),
    ([{"type": "must_contain", "text": ""}], "non-empty"),
    ({"type": "regex"}, "must be a list"),
])
def test_bad_validator_definitions_are_named(config, problem):
    assert any(problem in p for p in validators.problems(config))


def test_resolved_prompt_carries_validators_unchanged():
    p = ResolvedPrompt(system="s", validators=({"type": "must_contain", "text": "x"},))
    assert validators.check(p.validators, "has x") == [] and validators.check(p.validators, "nothing") == ["The answer must contain 'x'."]
