"""The loop's side of online evaluation: run flags, the agent's flag policy, output validators.

Kept out of loop.py so the loop's edits stay a few lines: the loop asks ``failing_flag`` after each
persisted turn, ``held_flags`` before gating a call, ``validate_final`` on a final answer and
``open_review`` when the run finishes. Evaluators themselves live in ``harness.evaluators``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from agentops.harness import costs, evaluators, hooks
from agentops.harness.evaluators import policy, validators
from agentops.harness.prompting import ResolvedPrompt
from agentops.harness.store import AgentRecord, MessageRecord, RunRecord

log = logging.getLogger(__name__)

JUDGE_SYSTEM = (
    "You grade an AI agent's final answer against a rubric. Reply with one JSON object and nothing else: "
    '{"score": <number 0..1>, "reason": "<one sentence>"}.'
)
JUDGE_MAX_TOKENS = 256


class RunFlags:
    """The union of every flag the run's turns raised, mirrored on ``Run.flags`` for the list."""

    def __init__(self, run: RunRecord):
        self.run = run
        self._flags = {f for f in (run.flags or []) if isinstance(f, str)}

    def all(self) -> list[str]:
        return sorted(self._flags)

    def new(self, flags: Iterable[str]) -> list[str] | None:
        """The run's flags with ``flags`` added when one is new (to write with the step's fence), else None."""
        added = set(flags) - self._flags
        if not added:
            return None
        self._flags |= added
        return self.all()

    def add(self, flags: Iterable[str]) -> None:
        """Outside a step (the judge job): write the run's flags when one is new."""
        union = self.new(flags)
        if union is not None:
            hooks.run_store().set_flags(self.run.pk, union)


def after_turn(run: RunRecord, message: MessageRecord) -> None:
    """Queue the judge evaluators this turn's cheap scores call for (after the turn commits)."""
    enabled = settings.AGENTOPS_ONLINE_JUDGES
    if not enabled:
        return
    has_results = message.role == "user" and any(b.get("type") == "tool_result" for b in message.content if isinstance(b, dict))
    reads = "tool_result" if has_results else "final_answer" if message.role == "assistant" else ""
    for name in evaluators.judges_due(reads, message.scores or {}, enabled):
        hooks.run_queue().enqueue_judge(run=run, seq=message.seq, evaluator=name)


def nonzero(scores: Mapping[str, float]) -> dict[str, float]:
    return {k: round(v, 3) for k, v in scores.items() if v > 0}


def tool_schemas(offered: Mapping[str, Any]) -> dict[str, Any]:
    """Tool name -> the spec's compiled validator (what tool_call_validity checks arguments with)."""
    return {name: o.spec.validator for name, o in offered.items()}


def failing_flag(agent: AgentRecord, flags: Sequence[str] | None) -> str | None:
    bad = policy.flags_with(agent.flag_policy, flags or (), "fail")
    return bad[0] if bad else None


def held_flags(agent: AgentRecord, flags: Iterable[str]) -> list[str]:
    return sorted(set(policy.flags_with(agent.flag_policy, flags, "hold")))


def open_review(run: RunRecord, flags: Sequence[str], outcome: str) -> None:
    """A finished run with a flag under a ``review`` policy goes to a human (one escalation per run)."""
    review = policy.flags_with(run.agent.flag_policy, flags, "review")
    if not review:
        return
    hooks.escalation_store().open(
        run=run, kind=hooks.KIND_REVIEW, tool_use_id=f"review-{run.pk}", tool_name="review", arguments={"flags": review, "outcome": outcome},
        grant=None, gate_reason=f"Online evaluators flagged this run ({', '.join(review)}); the agent's policy asks for a human review.",
        reason=f"Flags: {', '.join(review)}", context_summary=f"The run ended {outcome}.",
    )


@dataclass(frozen=True)
class Feedback:
    failures: list[str]
    attempt: int
    exhausted: bool
    message: str


def validate_final(prompt: ResolvedPrompt, text: str, messages: Sequence[MessageRecord], *, run: RunRecord) -> Feedback | None:
    """None when the answer passes (or nothing is configured); else what to tell the model, or that
    the retries are used up (the run then ends ``failed: validation``)."""
    config = [v for v in prompt.validators if isinstance(v, Mapping)]
    if not config:
        return None
    retries = prompt.params.get("validation_retries", validators.DEFAULT_RETRIES)
    retries = max(0, min(int(retries), validators.MAX_RETRIES)) if isinstance(retries, int) else validators.DEFAULT_RETRIES
    failures = validators.check(config, text, judge=lambda r, t, v: judge(run, r, t, v))
    if not failures:
        return None
    done = sum(1 for m in messages if m.role == "user" and "validation_failed" in (m.flags or []))
    if done >= retries:
        return Feedback(failures, done, True, f"The final answer failed output validation after {done} retries: " + " ".join(failures))
    return Feedback(failures, done + 1, False, validators.feedback_text(failures, attempt=done + 1, retries=retries))


def judge(run: RunRecord, rubric: str, text: str, config: Mapping[str, Any]) -> tuple[float, str]:
    """One judge call through the gateway, reserved and settled against the run's caps like any other."""
    # Here, not at the top: importing the anthropic SDK costs 0.3-0.9 s and web processes import this module.
    from agentops.llm import gateway

    model = str(config.get("model") or run.agent.model)
    messages = [{"role": "user", "content": [{"type": "text", "text": f"Rubric: {rubric}\n\nAnswer to grade:\n{text[:20000]}"}]}]
    bound = gateway.input_tokens_bound(system=JUDGE_SYSTEM, messages=messages, tools=[])
    try:
        reservation = costs.reserve(run=run, model=model, max_tokens=JUDGE_MAX_TOKENS, input_tokens_bound=bound)
    except (costs.CostCapExceeded, costs.UnknownModelPrice, costs.ModelNotAllowed) as exc:
        return 0.0, f"The judge could not run ({type(exc).__name__})."
    scenario = config.get("scenario") or ((run.metadata or {}).get("judge_scenario") if isinstance(run.metadata, dict) else None)
    try:
        result = gateway.create_message(model=model, fallback_model=None, system=JUDGE_SYSTEM, messages=messages, tools=[],
                                        max_tokens=JUDGE_MAX_TOKENS, scenario=scenario, conversation_key=f"judge-{run.pk}-{hash(text) & 0xffff}")
    except (gateway.ModelUnavailable, gateway.ModelRequestError) as exc:
        costs.release(reservation=reservation)
        return 0.0, f"The judge could not run ({exc.error_type})."
    message = result.message
    costs.settle(reservation=reservation, usage=message.usage.model_dump(mode="json") if message.usage else {}, model=result.model,
                 response_id=message.id)
    reply = "".join(getattr(b, "text", "") for b in message.content)
    return parse_judge(reply)


def parse_judge(reply: str) -> tuple[float, str]:
    m = re.search(r"\{.*\}", reply, re.DOTALL)
    try:
        data = json.loads(m.group(0)) if m else None
        score = float(data["score"]) if isinstance(data, dict) else None
    except (ValueError, TypeError, KeyError):
        score = None
    if score is None or not 0 <= score <= 1:
        return 0.0, "The judge's reply was not a score."
    return score, str(data.get("reason", ""))[:300] if isinstance(data, dict) else ""
