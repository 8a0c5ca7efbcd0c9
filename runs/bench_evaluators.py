"""``manage.py bench evaluators``: what the inline online evaluators add to each turn.

Drives demo-shaped runs (refund, injection, e-mail, knowledge-base answer) in-process against the
zero-latency scripted API, then replays exactly the evaluator calls the loop made for every
persisted turn — the assistant turn's evaluators with the log so far and the tool schemas, and the
tool-result evaluators per result — timing each turn. The baseline printed beside it is the loop's
own step time for the same runs (which already includes the evaluators once).
"""

from __future__ import annotations

import os
import time
from typing import Any

from django.conf import settings
from django.db import connection

from agentops.bench import benchmark
from agentops.harness import evaluators, grants, online
from agentops.harness.loop import drive_run
from runs.bench import _pct, _setup
from runs.models import Message, Run, ToolGrant

SCENARIOS = ("support_refund", "injection", "email_customer", "kb_answer")
TOOLS = ["search_knowledge_base", "lookup_account", "search_transactions", "check_policy", "issue_refund", "send_email"]


def _text(block: dict[str, Any]) -> str:
    content = block.get("content")
    return content if isinstance(content, str) else str(content)


@benchmark("evaluators", help="Inline online evaluators: added time per turn (p50 target <= 0.3 ms) beside the step time.",
           runs=40, repeat=20)
def evaluators_bench(*, stdout: Any, runs: int, repeat: int) -> dict[str, Any]:
    settings.ANTHROPIC_API_KEY = ""
    agent = _setup()
    agent.tools, agent.iteration_cap, agent.flag_policy = TOOLS, 25, {"injection": "record"}
    agent.save(update_fields=["tools", "iteration_cap", "flag_policy"])
    for name in TOOLS:
        ToolGrant.objects.get_or_create(tenant=agent.tenant, tool_name=name, agent=None, role="")
    step_log: list[tuple[str, float, float]] = []
    run_ids = []
    for i in range(runs):
        run = Run.objects.create(tenant=agent.tenant, agent=agent, input="benchmark", metadata={"scenario": SCENARIOS[i % len(SCENARIOS)]})
        drive_run(run.pk, worker_id="bench", step_log=step_log)
        run_ids.append(run.pk)
    probe = Run.objects.get(pk=run_ids[0])
    schemas = online.tool_schemas(grants.offered_tools(probe))
    names = tuple(schemas)
    per_turn: list[float] = []
    chars: list[int] = []
    for run_id in run_ids:
        log = list(Message.unscoped.filter(run_id=run_id).order_by("seq").values_list("role", "content"))
        for i, (role, content) in enumerate(log):
            if i == 0:
                continue
            best = float("inf")
            for _ in range(repeat):  # the minimum of repeats: the cost, not the scheduler's noise
                t0 = time.perf_counter()
                if role == "assistant":
                    evaluators.evaluate_assistant_turn(content, log=log[:i], tool_schemas=schemas)
                else:
                    for block in content:
                        if block.get("type") == "tool_result":
                            evaluators.evaluate_tool_result(_text(block), tool_names=names)
                best = min(best, time.perf_counter() - t0)
            per_turn.append(best * 1000)
            chars.append(sum(len(_text(b)) if b.get("type") == "tool_result" else len(str(b.get("text", ""))) for b in content))
    if not per_turn:
        raise RuntimeError("the benchmark measured no turns")
    steps = [total * 1000 for _kind, total, _model in step_log]
    load = os.getloadavg()
    stdout.write(f"{len(per_turn)} turns of {runs} runs on {connection.vendor}; load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
                 f"on {os.cpu_count()} cpus")
    stdout.write(f"inline evaluators per turn: p50 {_pct(per_turn, 0.5):.3f} ms, p99 {_pct(per_turn, 0.99):.3f} ms "
                 f"(target p50 <= 0.3 ms) | baseline loop step p50 {_pct(steps, 0.5):.3f} ms")
    return {
        "database": connection.vendor, "turns": len(per_turn), "load_1m": round(load[0], 2), "load_5m": round(load[1], 2),
        "evaluators_per_turn_p50_ms": round(_pct(per_turn, 0.5), 4), "evaluators_per_turn_p99_ms": round(_pct(per_turn, 0.99), 4),
        "evaluators_per_turn_max_ms": round(max(per_turn), 4), "turn_chars_p50": int(_pct([float(c) for c in chars], 0.5)),
        "step_p50_ms": round(_pct(steps, 0.5), 3), "step_p99_ms": round(_pct(steps, 0.99), 3),
        "target_met": _pct(per_turn, 0.5) <= 0.3,
    }
