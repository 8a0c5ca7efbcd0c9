"""``manage.py bench throughput``: end-to-end runs per second on 1 / 2 / 4 real workers, old worker vs new.

Each run is ``steps`` model steps against the zero-latency scripted model (``never_ends``: a tool
call every step, so a step is a model call and a tool call; the run ends at the agent's iteration
cap). For each worker count and each worker kind — ``fork``: ``ForkingAgentWorker``, a work horse
forked per job (the worker before issue 14); ``inprocess``: ``AgentWorker``, jobs run in the worker
process — that many worker processes (the ones ``approval-latency`` and ``eval-suite`` start; hence
this module sits on the top apps floor) are started, and a barrier waits until every one of them
has registered with Redis and taken a warm-up run; then ``runs`` runs are submitted at once and timed
until every one is terminal. The kinds alternate (``rounds`` times, the first kind swapped each
round), so a load that changes during the bench weighs on both: their ratio at the same worker count
is the figure that holds on a shared machine. PostgreSQL's committed transactions in this database over
the window (``pg_stat_database.xact_commit``, read-only ones included, the bench's own polls
subtracted) are reported per run and per model step. Durable commits per model step (deterministic:
agentops.bench.commits) come from one run of the same shape driven in this process. Beside them, in
the same window, ``pgbench`` (built-in simple-update, as many clients as workers) when
``pgbench_seconds`` > 0.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import time
from typing import Any

import django_rq
from django.conf import settings
from django.db import connection
from rq.worker import Worker

from agentops.bench import benchmark, machine_load, vacuum
from agentops.bench.commits import count_commits
from agentops.escalations.bench import _database_url, _start_workers, _stop_workers
from agentops.harness.loop import drive_run
from runs.bench import STEP_TABLES, _setup
from runs.models import TERMINAL_STATUSES, Run
from runs.services import enqueue_run

_POLL_S = 0.05
# The worker kinds compared: the fork-per-job worker (before issue 14) and the in-process one.
WORKER_CLASSES = {"fork": "agentops.worker.ForkingAgentWorker", "inprocess": "agentops.worker.AgentWorker"}


def _xact_commits() -> int:
    time.sleep(0.6)  # backends report their counters to the statistics collector within ~0.5 s
    with connection.cursor() as cur:
        cur.execute("SELECT pg_stat_clear_snapshot()")
        cur.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
        return int(cur.fetchone()[0])


def _batch(agent: Any, n: int, timeout: float) -> tuple[float, int]:
    """Submit ``n`` runs at once; seconds until all are terminal, and the polls made meanwhile."""
    t0 = time.perf_counter()
    runs = [Run.objects.create(tenant=agent.tenant, agent=agent, input="throughput", metadata={"scenario": "never_ends"}) for _ in range(n)]
    for run in runs:
        enqueue_run(run)
    ids, polls = [r.pk for r in runs], 0
    deadline = time.monotonic() + timeout
    while Run.objects.filter(pk__in=ids).exclude(status__in=list(TERMINAL_STATUSES)).exists():
        polls += 1
        if time.monotonic() > deadline:
            raise RuntimeError(f"{n} runs did not finish in {timeout}s")
        time.sleep(_POLL_S)
    elapsed = time.perf_counter() - t0
    ended = Run.objects.filter(pk__in=ids, outcome="max_iterations").count()
    if ended != n:
        raise RuntimeError(f"only {ended} of {n} runs reached the iteration cap: the benchmark measured something else")
    return elapsed, polls + 2 * n + 1  # the polls, each run's INSERT and enqueue bookkeeping, the final count


def _barrier(procs: list[Any], timeout: float) -> None:
    """Wait until every started worker process has registered with Redis (by pid), or fail loudly."""
    pids = {p.pid for p in procs}
    deadline = time.monotonic() + timeout
    while True:
        dead = [p.pid for p in procs if p.poll() is not None]
        if dead:
            raise RuntimeError(f"worker processes {dead} exited before the bench started (see var/bench-approval-worker-*.log)")
        live = {w.pid for w in Worker.all(connection=django_rq.get_connection("runs"))}
        if pids <= live:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(pids & live)} of {len(pids)} workers registered in {timeout}s")
        time.sleep(_POLL_S)


def _durable_per_step(agent: Any, steps: int) -> tuple[float, float]:
    """Durable commits and transactions per model step of one run driven here, as a worker drives it."""
    run = Run.objects.create(tenant=agent.tenant, agent=agent, input="throughput", metadata={"scenario": "never_ends"})
    with count_commits() as counts:
        drive_run(run.pk, worker_id="bench-throughput")
    return counts.durable / steps, counts.transactions / steps


def _pgbench(clients: int, seconds: int) -> float:
    """TPS of pgbench's simple-update in this database (initialised once, scale 1)."""
    exe = shutil.which("pgbench")
    if exe is None:
        raise RuntimeError("pgbench is not installed; pass --opt pgbench_seconds=0 to skip it")
    url = _database_url()
    with connection.cursor() as cur:
        cur.execute("SELECT to_regclass('pgbench_accounts') IS NOT NULL")
        if not cur.fetchone()[0]:
            subprocess.run([exe, "-i", "-s", "1", "-q", url], check=True, capture_output=True, timeout=300)
    out = subprocess.run([exe, "-n", "-b", "simple-update", "-c", str(clients), "-j", str(clients), "-T", str(seconds), url],
                         check=True, capture_output=True, text=True, timeout=seconds + 120).stdout
    match = re.search(r"tps = ([\d.]+)", out)
    if not match:
        raise RuntimeError(f"pgbench printed no tps: {out[-300:]}")
    return float(match.group(1))


@benchmark("throughput", help="End-to-end N-step runs/s on 1/2/4 real workers, fork-per-job vs in-process alternating; transactions and durable commits per step; pgbench beside.",
           runs=40, steps=5, workers="1,2,4", kinds="fork,inprocess", rounds=2, pgbench_seconds=5, timeout=600)
def throughput(*, stdout: Any, runs: int, steps: int, workers: Any, kinds: Any, rounds: int, pgbench_seconds: int,
               timeout: int) -> dict[str, Any]:
    settings.ANTHROPIC_API_KEY = ""  # scripted mode, whatever the environment says
    agent = _setup()
    agent.iteration_cap = int(steps)
    agent.save(update_fields=["iteration_cap"])
    figures_vacuumed = vacuum(*STEP_TABLES)
    order = [k.strip() for k in str(kinds).split(",") if k.strip()]
    unknown = [k for k in order if k not in WORKER_CLASSES]
    if unknown or not order:
        raise ValueError(f"kinds: {unknown or order} (known: {', '.join(WORKER_CLASSES)})")
    figures: dict[str, Any] = {"vacuumed_before": figures_vacuumed}
    _durable_per_step(agent, int(steps))  # warm this process's caches
    durable, transactions = _durable_per_step(agent, int(steps))
    figures["durable_commits_per_model_step"] = round(durable, 2)
    figures["in_process_transactions_per_model_step"] = round(transactions, 2)
    stdout.write(f"one run driven in process: {durable:.2f} durable commits and {transactions:.2f} transactions per model step")
    for n in [int(w) for w in str(workers).split(",") if w.strip()]:
        rates: dict[str, list[float]] = {k: [] for k in order}
        per_run: dict[str, list[float]] = {k: [] for k in order}
        for r in range(max(1, int(rounds))):
            for kind in (order if r % 2 == 0 else order[::-1]):  # alternate which kind goes first
                procs = _start_workers(n, worker_class=WORKER_CLASSES[kind])
                try:
                    _barrier(procs, timeout)
                    _batch(agent, 2 * n, timeout)  # warm every worker (imports, connections)
                    before = _xact_commits()
                    elapsed, own = _batch(agent, int(runs), timeout)
                    commits = _xact_commits() - before - own - 2
                finally:
                    _stop_workers(procs)
                rates[kind].append(int(runs) / elapsed)
                per_run[kind].append(commits / int(runs))
                stdout.write(f"{n} workers, {kind}, round {r + 1}: {runs} runs of {steps} steps in {elapsed:.2f}s = {int(runs) / elapsed:.2f} runs/s; "
                             f"{commits / int(runs):.1f} transactions per run; load {machine_load()}")
        for kind in order:
            figures[f"workers_{n}_{kind}_runs_per_s"] = round(statistics.fmean(rates[kind]), 2)
            figures[f"workers_{n}_{kind}_transactions_per_run"] = round(statistics.fmean(per_run[kind]), 1)
            figures[f"workers_{n}_{kind}_transactions_per_model_step"] = round(statistics.fmean(per_run[kind]) / int(steps), 2)
        if len(order) == 2:
            old, new = order
            ratio = statistics.fmean(rates[new]) / statistics.fmean(rates[old])
            figures[f"workers_{n}_ratio_{new}_to_{old}"] = round(ratio, 2)
            stdout.write(f"{n} workers: {new} / {old} = {ratio:.2f}x runs/s (mean of {len(rates[new])} alternating rounds each)")
        if int(pgbench_seconds) > 0:
            tps = _pgbench(n, int(pgbench_seconds))
            figures[f"pgbench_{n}_clients_tps"] = round(tps, 1)
            stdout.write(f"  pgbench simple-update, {n} clients, {pgbench_seconds}s: {tps:.0f} tps; load {machine_load()}")
    figures["pid"] = os.getpid()
    return figures
