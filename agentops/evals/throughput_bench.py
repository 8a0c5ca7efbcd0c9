"""``manage.py bench throughput``: end-to-end runs per second on 1 / 2 / 4 real workers (measurement only).

Each run is ``steps`` model steps against the zero-latency scripted model (``never_ends``: a tool
call every step, so a step is a model call and a tool call; the run ends at the agent's iteration
cap). For each worker count, that many ``AgentWorker`` processes (the ones ``approval-latency`` and
``eval-suite`` start; hence this module sits on the top apps floor) are started and warmed, then
``runs`` runs are submitted at once and timed until every one is terminal. PostgreSQL's committed
transactions in this database over the window (``pg_stat_database.xact_commit``, read-only ones
included, the bench's own polls subtracted) are reported per run and per model step. Beside them, in
the same window, ``pgbench`` (built-in simple-update, as many clients as workers) when
``pgbench_seconds`` > 0.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from typing import Any

from django.conf import settings
from django.db import connection

from agentops.bench import benchmark, machine_load
from agentops.escalations.bench import _database_url, _start_workers, _stop_workers
from runs.bench import _setup
from runs.models import TERMINAL_STATUSES, Run
from runs.services import enqueue_run

_POLL_S = 0.05


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


@benchmark("throughput", help="End-to-end N-step runs/s on 1/2/4 real workers, zero-latency model; transactions per step; pgbench beside.",
           runs=40, steps=5, workers="1,2,4", pgbench_seconds=5, timeout=600)
def throughput(*, stdout: Any, runs: int, steps: int, workers: Any, pgbench_seconds: int, timeout: int) -> dict[str, Any]:
    settings.ANTHROPIC_API_KEY = ""  # scripted mode, whatever the environment says
    agent = _setup()
    agent.iteration_cap = int(steps)
    agent.save(update_fields=["iteration_cap"])
    figures: dict[str, Any] = {}
    for n in [int(w) for w in str(workers).split(",") if w.strip()]:
        procs = _start_workers(n)
        try:
            _batch(agent, n, timeout)  # warm every worker (imports, connections)
            before = _xact_commits()
            elapsed, own = _batch(agent, int(runs), timeout)
            commits = _xact_commits() - before - own - 2
        finally:
            _stop_workers(procs)
        rate = int(runs) / elapsed
        per_run = commits / int(runs)
        figures[f"workers_{n}_runs_per_s"] = round(rate, 2)
        figures[f"workers_{n}_transactions_per_run"] = round(per_run, 1)
        figures[f"workers_{n}_transactions_per_model_step"] = round(per_run / int(steps), 2)
        stdout.write(f"{n} workers: {runs} runs of {steps} steps in {elapsed:.2f}s = {rate:.2f} runs/s; "
                     f"{per_run:.1f} transactions per run ({per_run / int(steps):.2f} per model step); load {machine_load()}")
        if int(pgbench_seconds) > 0:
            tps = _pgbench(n, int(pgbench_seconds))
            figures[f"pgbench_{n}_clients_tps"] = round(tps, 1)
            stdout.write(f"  pgbench simple-update, {n} clients, {pgbench_seconds}s: {tps:.0f} tps; load {machine_load()}")
    figures["pid"] = os.getpid()
    return figures
