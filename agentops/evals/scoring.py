"""Scoring one finished case run: build the checks' observation from the durable records (the
run, its tool-call ledger), and give the LLM judge a model call through the same gateway, the same
cost reservation and the same caps as any call of that run.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings

from agentops.evals.checks import JudgeError, Observation, ToolUse, Verdict, evaluate, parse_judge_answer
from agentops.harness import costs
from runs.models import Message, Run, ToolCall

log = logging.getLogger(__name__)

JUDGE_MAX_TOKENS = 300
JUDGE_SYSTEM = (
    "You grade an AI agent's answer against a rubric. Reply with one JSON object and nothing else: "
    '{"score": <a number from 0 to 1>, "reason": "<one sentence>"}. 1 means the answer fully meets the rubric.'
)


@dataclass
class Scored:
    passed: bool
    verdicts: list[Verdict]
    output: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    turns: int = 0
    cost: Decimal = Decimal(0)
    run_status: str = ""


def observe(run: Run) -> tuple[Observation, list[dict[str, Any]]]:
    calls = list(ToolCall.unscoped.filter(run_id=run.pk).order_by("created_at", "id"))
    # The ledger keeps arguments redacted for display (e-mail addresses, card numbers); checks compare
    # the arguments the model actually sent, from the tool_use blocks of the durable log.
    sent: dict[str, Any] = {}
    for content in Message.unscoped.filter(run_id=run.pk, role="assistant").values_list("content", flat=True):
        for block in content if isinstance(content, list) else []:
            if isinstance(block, dict) and block.get("type") == "tool_use":
                sent[str(block.get("id"))] = block.get("input")
    uses = []
    for c in calls:
        arguments = sent.get(c.tool_use_id, c.arguments)
        uses.append(ToolUse(c.tool_name, arguments if isinstance(arguments, dict) else {}, c.is_error, c.status))
    shown = [{"tool": c.tool_name, "arguments": c.arguments, "status": c.status, "is_error": c.is_error,
              "result": (c.result if isinstance(c.result, str) else json.dumps(c.result))[:2000] if c.result is not None else None}
             for c in calls]
    obs = Observation(output=run.result or "", tool_calls=uses, turns=run.iterations, cost=Decimal(run.cost), status=run.status,
                      outcome=run.outcome, input=run.input)
    return obs, shown


def judge_for(run: Run):  # type: ignore[no-untyped-def]
    """A judge that charges its model call to ``run`` (the case's run): reserved, capped, settled."""
    def judge(rubric: str, obs: Observation, check: dict[str, Any]) -> tuple[float, str]:
        # The gateway imports the anthropic SDK (0.3-0.9 s); web processes never judge, workers preload it.
        from agentops.llm import gateway

        model = str(check.get("model") or settings.EVALS_JUDGE_MODEL)
        messages = [{"role": "user", "content": [{"type": "text", "text": (
            f"Rubric:\n{rubric}\n\nThe user's request:\n{obs.input[:20_000]}\n\nThe agent's final answer:\n{obs.output[:20_000]}")}]}]
        bound = gateway.input_tokens_bound(system=JUDGE_SYSTEM, messages=messages, tools=[])
        try:
            reservation = costs.reserve(run=run, model=model, max_tokens=JUDGE_MAX_TOKENS, input_tokens_bound=bound)
        except (costs.CostCapExceeded, costs.UnknownModelPrice, costs.ModelNotAllowed) as exc:
            raise JudgeError(f"the judge's call was refused ({type(exc).__name__}: {exc})")
        scenario = run.metadata.get("judge_scenario") if isinstance(run.metadata, dict) else None
        try:
            result = gateway.create_message(model=model, fallback_model=None, system=JUDGE_SYSTEM, messages=messages, tools=[],
                                            max_tokens=JUDGE_MAX_TOKENS, scenario=scenario, conversation_key=f"judge-{run.pk}")
        except (gateway.ModelUnavailable, gateway.ModelRequestError) as exc:
            costs.release(reservation=reservation)
            raise JudgeError(f"the judge's call failed ({exc.error_type})")
        message = result.message
        usage = message.usage.model_dump(mode="json") if message.usage else {}
        costs.settle(reservation=reservation, usage=usage, model=result.model, response_id=message.id)
        text = "".join(getattr(b, "text", "") for b in message.content)
        return parse_judge_answer(text)

    return judge


def score(run: Run, checks: list[dict[str, Any]]) -> Scored:
    obs, shown = observe(run)
    needs_judge = any(isinstance(c, dict) and c.get("type") == "judge" for c in checks)
    verdicts = evaluate(checks, obs, judge_for(run) if needs_judge else None)
    cost = Decimal(Run.unscoped.filter(pk=run.pk).values_list("cost", flat=True).get()) if needs_judge else obs.cost
    return Scored(passed=all(v.passed for v in verdicts), verdicts=verdicts, output=obs.output, tool_calls=shown,
                  turns=obs.turns, cost=cost, run_status=run.status + (f": {run.outcome}" if run.outcome else ""))
