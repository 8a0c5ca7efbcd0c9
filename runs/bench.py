"""``manage.py bench step-overhead``: what the harness costs per step, beside bare SDK calls.

Runs agents in-process against the zero-latency scripted Messages API and times every step of
the loop. For a model step, overhead = step time − time inside ``client.messages.create``:
the lease fence, control checks, log rebuild, breakers, grants, cost reservation and settlement,
the persisted turn, events and spans. Tool steps (validation, the idempotency ledger row, the
tool itself — a database lookup here — and the persisted tool_result turn) are reported too.
In the same run, bare ``client.messages.create`` calls against the same scripted API give the
baseline the harness adds to, and LiteLLM's published proxy overhead the ratio the issue sets
(``LITELLM_OVERHEAD_*``). Beside the times, the load-independent figures: statements, transactions
and durable commits per model step (a model call and its tool half), counted on two more runs
(agentops.bench.commits) so the counting adds nothing to the timed ones.
"""

from __future__ import annotations

import statistics
import time
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from agentops.bench import benchmark, vacuum
from agentops.bench.commits import count_commits
from agentops.harness.loop import drive_run
from agentops.llm.bench import bare_call_latencies, bare_stream_latencies
from agentops.toolbox.seed import seed_demo_data
from runs.models import Agent, Run, RunStatus, ToolGrant
from tenants.models import Tenant, Tier

# LiteLLM's published proxy overhead ("LiteLLM Overhead Duration", 2 instances against a fake
# OpenAI endpoint, https://docs.litellm.ai/docs/benchmarks): median 12 ms, average 14.74 ms.
LITELLM_OVERHEAD_MEDIAN_MS = 12.0
LITELLM_OVERHEAD_MEAN_MS = 14.74


# What a step writes: vacuumed before each run (agentops.bench.vacuum).
STEP_TABLES = ("runs_run", "runs_message", "runs_runevent", "runs_span", "runs_toolcall", "budgets_reservation",
               "budgets_spendentry", "budgets_capcounter", "budgets_dailyrollup")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _setup() -> Any:
    tier, _ = Tier.objects.get_or_create(slug="bench", defaults={"name": "Benchmark"})
    for field in ("task_cost_cap", "user_day_cost_cap", "user_month_cost_cap", "tenant_month_cost_cap"):
        setattr(tier, field, Decimal("1000000"))
    tier.max_concurrent_runs = 1000
    tier.save()
    tenant, _ = Tenant.objects.get_or_create(slug="bench", defaults={"name": "Benchmark", "tier": tier})
    seed_demo_data(tenant)
    agent, _ = Agent.objects.get_or_create(
        tenant=tenant, name="bench", defaults={"system_prompt": "Benchmark agent.", "model": "claude-haiku-4-5",
                                               "tools": ["search_knowledge_base"], "iteration_cap": 10_000},
    )
    ToolGrant.objects.get_or_create(tenant=tenant, tool_name="search_knowledge_base", agent=None, role="")
    return agent


@benchmark("step-overhead", help="Harness overhead per step vs bare client.messages.create (scripted, zero latency).",
           runs=20, steps_per_run=10, bare_calls=400, durable_reservations=1, input_chars=0)
def step_overhead(*, stdout: Any, runs: int, steps_per_run: int, bare_calls: int, durable_reservations: int,
                  input_chars: int) -> dict[str, Any]:
    settings.ANTHROPIC_API_KEY = ""  # scripted mode, whatever the environment says
    settings.AGENTOPS_DURABLE_RESERVATIONS = bool(durable_reservations)
    agent = _setup()
    agent.iteration_cap = steps_per_run
    agent.save(update_fields=["iteration_cap"])
    # ``input_chars``: a run's input of that many characters (a customer's message, a document) instead of
    # one word. Every model call updates the run's row; were that update not HOT, its cost would grow with
    # the input (the trigram GIN indexes over it are rewritten), which a one-word input cannot show.
    run_input = _input_text(input_chars) if input_chars else "benchmark"
    vacuumed = vacuum(*STEP_TABLES)
    bare_call_latencies(20)  # warm the client and the scripted transport
    step_log: list[tuple[str, float, float]] = []
    wall0 = time.perf_counter()
    for _ in range(runs):
        run = Run.objects.create(tenant=agent.tenant, agent=agent, input=run_input, metadata={"scenario": "never_ends"})
        drive_run(run.pk, worker_id="bench", step_log=step_log)
        run.refresh_from_db()
        if run.status != RunStatus.FAILED or run.outcome != "max_iterations":
            raise RuntimeError(f"benchmark run ended {run.status}/{run.outcome}: {run.error_message}")
    wall = time.perf_counter() - wall0
    model_overhead = [(total - model) * 1000 for kind, total, model in step_log if kind == "model"]
    model_calls = [model * 1000 for kind, total, model in step_log if kind == "model"]
    other_steps = [total * 1000 for kind, total, model in step_log if kind == "other"]
    bare = bare_call_latencies(bare_calls)
    bare_stream = bare_stream_latencies(bare_calls, scenario="never_ends")  # the answers the runs streamed
    counted_runs = 2
    counted = [Run.objects.create(tenant=agent.tenant, agent=agent, input="benchmark", metadata={"scenario": "never_ends"}).pk
               for _ in range(counted_runs)]  # created outside the count: submitting is not a step
    with count_commits() as counts:
        for run_id in counted:
            drive_run(run_id, worker_id="bench")
    steps = counted_runs * steps_per_run
    fsync = _commit_latencies(200)
    stdout.write(f"{len(model_overhead)} model steps, {len(other_steps)} other steps in {wall:.2f}s on {connection.vendor}; "
                 f"per model step: {counts.statements / steps:.1f} statements, {counts.transactions / steps:.1f} transactions, "
                 f"{counts.durable / steps:.2f} durable commits")
    mean = statistics.fmean(model_overhead) if model_overhead else 0.0
    return {
        "input_chars": len(run_input),
        "vacuumed_before": vacuumed,
        "statements_per_model_step": round(counts.statements / steps, 2),
        "transactions_per_model_step": round(counts.transactions / steps, 2),
        "durable_commits_per_model_step": round(counts.durable / steps, 2),
        "overhead_p50_to_litellm_median": round(_pct(model_overhead, 0.50) / LITELLM_OVERHEAD_MEDIAN_MS, 3),
        "overhead_mean_to_litellm_mean": round(mean / LITELLM_OVERHEAD_MEAN_MS, 3),
        "database": connection.vendor,
        "model_steps": len(model_overhead),
        "overhead_p50_ms": round(_pct(model_overhead, 0.50), 3),
        "overhead_p99_ms": round(_pct(model_overhead, 0.99), 3),
        "overhead_mean_ms": round(mean, 3),
        "harness_model_call_p50_ms": round(_pct(model_calls, 0.50), 3),
        "tool_step_p50_ms": round(_pct(other_steps, 0.50), 3),
        "tool_step_p99_ms": round(_pct(other_steps, 0.99), 3),
        "bare_create_p50_ms": round(_pct(bare, 0.50), 3),
        "bare_create_p99_ms": round(_pct(bare, 0.99), 3),
        # The harness streams (for live deltas): the SDK's stream alone, beside the harness's model call
        # (which also redacts and relays each delta to Redis; outside the overhead above, inside the step).
        "bare_stream_p50_ms": round(_pct(bare_stream, 0.50), 3),
        "steps_per_s": round(len(step_log) / wall, 1) if wall else 0,
        # The floor under any durable checkpoint on this machine: one single-row UPDATE + commit.
        "durable_commit_p50_ms": round(_pct(fsync, 0.50), 3),
        "durable_commit_p99_ms": round(_pct(fsync, 0.99), 3),
    }


def _input_text(chars: int) -> str:
    """``chars`` characters of varied words (distinct trigrams, as real text has), the same every run."""
    words = ("order", "refund", "parcel", "invoice", "delivery", "account", "address")
    return " ".join(f"{words[i % len(words)]}{i}" for i in range(chars // 4 + 1))[:chars]


def _commit_latencies(n: int) -> list[float]:
    agent = Agent.objects.get(tenant__slug="bench", name="bench")
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        with transaction.atomic():
            Agent.objects.filter(pk=agent.pk).update(max_tokens=1024)
        out.append((time.perf_counter() - t0) * 1000)
    connection.close()
    return out
