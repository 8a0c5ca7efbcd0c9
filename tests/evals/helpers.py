"""Drive an eval run in-process (the harness's own loop, no workers) for tests that need many."""

from __future__ import annotations

from agentops.evals.models import EvalResult, EvalRun, ResultStatus
from agentops.harness.loop import drive_run


def drive_eval(eval_run: EvalRun, *, max_rounds: int = 200) -> EvalRun:
    for _ in range(max_rounds):
        running = list(EvalResult.objects.filter(eval_run=eval_run, status=ResultStatus.RUNNING).values_list("run_id", flat=True))
        if not running:
            break
        for run_id in running:
            drive_run(run_id, worker_id="test-eval")
    eval_run.refresh_from_db()
    return eval_run


def greeting_cases(n_pass: int, n_fail: int, *, critical_fail: bool = False) -> list[dict]:
    out = [{"name": f"pass-{i}", "input": f"Hello {i}", "metadata": {"scenario": "default"},
            "checks": [{"type": "contains", "value": "support assistant"}]} for i in range(n_pass)]
    out += [{"name": f"fail-{i}", "input": f"Hi {i}", "metadata": {"scenario": "default"}, "critical": critical_fail,
             "checks": [{"type": "contains", "value": "refund"}]} for i in range(n_fail)]
    return out
