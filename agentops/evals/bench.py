"""``manage.py bench eval-suite``: an eval run of N cases on real workers beside N bare runs of the
same shape, in the same process and on the same workers.

Both sides use the zero-latency scripted model and the ``kb_answer`` scenario (a knowledge-base
lookup, then an answer: two model calls and one tool call per run). Bare runs are submitted all at
once and timed until every one is terminal; the eval run is started (its suite's parallelism is N,
so every case is dispatched at once too) and timed until it is finished, i.e. every case scored.
The ratio eval/bare cases per second is what eval bookkeeping costs (target ≥ 0.8). The machine's
load average is printed before and after, since other processes share it.
"""

from __future__ import annotations

import os
import time
from decimal import Decimal
from typing import Any

from django.conf import settings

from agentops.bench import benchmark
from agentops.escalations.bench import _start_workers, _stop_workers  # the same real AgentWorker processes
from agentops.evals import services
from agentops.evals.models import EvalCase, EvalRun, EvalRunStatus, EvalSuite
from agentops.prompts.models import Prompt, PromptVersion
from agentops.toolbox.seed import seed_demo_data
from runs.models import TERMINAL_STATUSES, Agent, Run, ToolGrant
from runs.services import enqueue_run
from tenants.models import Tenant, Tier

SLUG = "bench-evals"


def _setup(cases: int) -> EvalSuite:
    tier, _ = Tier.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    for field in ("task_cost_cap", "user_day_cost_cap", "user_month_cost_cap", "tenant_month_cost_cap"):
        setattr(tier, field, Decimal("1000000"))
    tier.max_concurrent_runs = 10_000
    tier.save()
    tenant, _ = Tenant.objects.get_or_create(slug=SLUG, defaults={"name": "Bench: evals", "tier": tier})
    seed_demo_data(tenant)
    agent, _ = Agent.objects.get_or_create(tenant=tenant, name="bench-evals", defaults={
        "system_prompt": "Benchmark agent.", "model": "claude-haiku-4-5", "tools": ["search_knowledge_base"], "max_tokens": 256})
    ToolGrant.objects.get_or_create(tenant=tenant, tool_name="search_knowledge_base", agent=None, role="")
    prompt, _ = Prompt.objects.get_or_create(tenant=tenant, name="bench")
    if not prompt.versions.exists():
        PromptVersion.objects.create(tenant=tenant, prompt=prompt, number=1, system="Benchmark agent.", model="claude-haiku-4-5",
                                     tools=["search_knowledge_base"])
    suite, _ = EvalSuite.objects.get_or_create(tenant=tenant, name="bench", defaults={"prompt": prompt, "agent": agent})
    suite.parallelism = cases  # every case dispatched at once, as the bare runs are submitted
    suite.save()
    EvalCase.objects.filter(suite=suite).delete()
    EvalCase.objects.bulk_create([EvalCase(
        tenant=tenant, suite=suite, name=f"case-{i:04d}", input=f"What is the refund policy? ({i})", metadata={"scenario": "kb_answer"},
        checks=[{"type": "contains", "value": "30 days"}, {"type": "tool_called", "tool": "search_knowledge_base"}])
        for i in range(cases)])
    return suite


def _bare(suite: EvalSuite, n: int, timeout: float) -> float:
    version = suite.prompt.versions.get(number=1)
    t0 = time.perf_counter()
    runs = [Run.objects.create(tenant=suite.tenant, agent=suite.agent, input=f"What is the refund policy? ({i})",
                               metadata={"scenario": "kb_answer"}, prompt_version_id=version.pk, prompt_version_number=1,
                               prompt_sha256=version.sha256) for i in range(n)]
    for run in runs:
        enqueue_run(run)
    ids = [r.pk for r in runs]
    deadline = time.monotonic() + timeout
    while Run.objects.filter(pk__in=ids).exclude(status__in=list(TERMINAL_STATUSES)).exists():
        if time.monotonic() > deadline:
            raise RuntimeError("bare runs did not finish in time")
        time.sleep(0.02)
    return time.perf_counter() - t0


def _eval(suite: EvalSuite, timeout: float) -> tuple[float, EvalRun]:
    t0 = time.perf_counter()
    eval_run = services.eval_run_start(suite=suite, version=suite.prompt.versions.get(number=1))
    deadline = time.monotonic() + timeout
    while not EvalRun.objects.filter(pk=eval_run.pk, status=EvalRunStatus.FINISHED).exists():
        if time.monotonic() > deadline:
            raise RuntimeError("the eval run did not finish in time")
        time.sleep(0.02)
    elapsed = time.perf_counter() - t0
    eval_run.refresh_from_db()
    return elapsed, eval_run


@benchmark("eval-suite", help="An N-case eval run on real workers vs N bare runs of the same shape (cases/s, target ≥ 0.8×).",
           cases=100, workers=2, rounds=2, timeout=600)
def eval_suite(*, stdout: Any, cases: int, workers: int, rounds: int, timeout: int) -> dict[str, Any]:
    settings.ANTHROPIC_API_KEY = ""  # scripted mode, whatever the environment says
    suite = _setup(int(cases))
    load_before = os.getloadavg()
    procs = _start_workers(int(workers))
    try:
        _bare(suite, min(10, int(cases)), timeout)  # warm the workers (imports, connections)
        bare_s, eval_s = [], []
        last: EvalRun | None = None
        for _ in range(int(rounds)):
            bare_s.append(_bare(suite, int(cases), timeout))
            elapsed, last = _eval(suite, timeout)
            eval_s.append(elapsed)
    finally:
        _stop_workers(procs)
    load_after = os.getloadavg()
    if last is None or last.done != int(cases) or last.passed != int(cases):
        raise RuntimeError(f"the eval run measured nothing useful: {last and (last.done, last.passed)}")
    bare_rate = int(cases) / min(bare_s)
    eval_rate = int(cases) / min(eval_s)
    stdout.write(f"bare {', '.join(f'{s:.2f}s' for s in bare_s)}; eval {', '.join(f'{s:.2f}s' for s in eval_s)} for {cases} each on {workers} workers; "
                 f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} ({os.cpu_count()} cpus)")
    return {
        "bare_runs_per_s": round(bare_rate, 2), "eval_cases_per_s": round(eval_rate, 2),
        "ratio": round(eval_rate / bare_rate, 3), "target_ratio": 0.8,
        # Best-of rounds above; the mean below shows how much a shared machine moved the rounds.
        "ratio_of_means": round((sum(bare_s) / len(bare_s)) / (sum(eval_s) / len(eval_s)), 3),
        "bare_seconds": [round(s, 3) for s in bare_s], "eval_seconds": [round(s, 3) for s in eval_s],
        "pass_rate": str(last.pass_rate), "load_1m_before": round(load_before[0], 2), "load_1m_after": round(load_after[0], 2),
    }
