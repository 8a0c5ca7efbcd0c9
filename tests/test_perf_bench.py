"""Every registered bench runs through ``manage.py bench`` with tiny sizes, measures something and prints
the load; a bench that measured nothing fails the command. ``bench runs-list``, ``export`` and
``inbox`` also report figures beside their baselines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from io import StringIO
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from agentops import bench as bench_registry
from agentops.bench import benchmark, nothing_measured, registry
from budgets import bench as budgets_bench
from tests.conftest import ensure_model_prices

pytestmark = pytest.mark.django_db

# Every registered bench with sizes small enough that all of them run in well under a minute.
TINY: dict[str, list[str]] = {
    "approval-latency": ["runs=2", "workers=1", "preload=1"],
    "eval-suite": ["cases=2", "workers=1", "rounds=1", "timeout=60"],
    "evaluators": ["runs=2", "repeat=2"],
    "export": ["rows=300", "repeat=1"],
    "inbox": ["pending=30", "repeat=1"],
    "memory-recall": ["facts=3000", "subjects=10", "repeat=5"],
    "model-call": ["n=20"],
    "prompt-fetch": ["requests=20", "warmup=2"],
    "reservations": ["processes=1", "seconds=1", "rounds=1"],
    "run-page": ["sizes=10,30", "repeat=2"],
    "runs-list": ["sizes=300,3000", "repeat=1"],
    "audit-log": ["events=300", "repeat=1"],
    "spend-page": ["rows=500", "repeat=2"],
    "step-overhead": ["runs=2", "steps_per_run=3", "bare_calls=20"],
    "stream-latency": ["calls=2", "pace_ms=5"],
    "throughput": ["runs=2", "steps=2", "workers=1", "pgbench_seconds=0", "timeout=60"],
}
# Benches whose processes (spawned children, RQ workers) read what this test wrote: committed data.
_REAL_PROCESSES = {"approval-latency", "eval-suite", "reservations", "stream-latency", "throughput"}


def _bench(*args: str) -> tuple[dict, str]:  # type: ignore[type-arg]
    out = StringIO()
    call_command("bench", *args, stdout=out)
    text = out.getvalue()
    return json.loads(text.strip().splitlines()[-1]), text


def test_every_registered_bench_has_tiny_sizes_here():
    assert set(TINY) == set(registry())


@pytest.mark.parametrize("name", [n for n in TINY if n not in _REAL_PROCESSES])
def test_every_bench_measures_something_through_the_command_and_prints_the_load(name):
    _assert_measured(name, *_bench(name, *[a for opt in TINY[name] for a in ("--opt", opt)]))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("name", sorted(_REAL_PROCESSES))
def test_benches_with_processes_measure_something_through_the_command(name):
    ensure_model_prices()  # the previous transactional test truncated them
    _assert_measured(name, *_bench(name, *[a for opt in TINY[name] for a in ("--opt", opt)]))


def _assert_measured(name: str, figures: dict[str, Any], text: str) -> None:
    assert figures["benchmark"] == name
    assert nothing_measured(figures, {}) == ""
    assert f"{name}: load before " in text and f"{name}: load after " in text and "cpus" in text


def test_a_bench_that_measured_nothing_fails_the_command():
    @benchmark("zero-bench", help="measures nothing", n=1)
    def zero(*, stdout: Any, n: int) -> dict[str, Any]:
        return {"ops_per_s": 0.0, "p50_ms": 1.0}

    try:
        with pytest.raises(CommandError, match="zero rates: ops_per_s"):
            _bench("zero-bench")
        bench_registry._REGISTRY["zero-bench"].func = lambda *, stdout, n: {"calls": 5}
        with pytest.raises(CommandError, match="no positive measurement"):
            _bench("zero-bench")
    finally:
        del bench_registry._REGISTRY["zero-bench"]
    # Options are not measurements: a bench echoing ``seconds`` back has measured nothing.
    assert nothing_measured({"wall_ms": 0.0}, {"wall_ms": 3}) != ""


def test_manage_py_bench_runs_model_call_and_exits_zero():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "agentops.settings"}
    proc = subprocess.run(
        [sys.executable, str(settings.BASE_DIR / "manage.py"), "bench", "model-call", "--opt", "n=10"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert figures["calls"] == 10 and figures["p50_ms"] > 0 and "cpus" in figures["load_after"]


def test_runs_list_bench_reports_each_size_beside_the_offset_count_baseline_and_the_growth():
    figures, text = _bench("runs-list", "--opt", "sizes=300,3000", "--opt", "repeat=1")
    assert figures["sizes"] == [300, 3000] and "cpus" in figures["load_after"]
    for size in (300, 3000):
        for case in ("first_page", "deep_page", "filter_failed", "filter_agent", "search_rare", "search_common"):
            assert figures[f"{size}_{case}_page_ms"] > 0 and figures[f"{size}_{case}_queries_ms"] > 0
            assert figures[f"{size}_{case}_baseline_queries_ms"] > 0
        assert figures[f"{size}_first_page_page_ms"] > 0
    assert figures["growth_first_page"] > 0 and figures["3000_deep_page_used"] == 19
    assert "vs OFFSET/COUNT" in text and "growth 300 -> 3000" in text
    # Seeding is keyed by size: a second invocation adds no rows.
    _, again = _bench("runs-list", "--opt", "sizes=300", "--opt", "repeat=1", "--opt", "baseline=0")
    assert "seeded" not in again and "baseline_queries_ms" not in again


def test_export_bench_compares_copy_with_python_on_the_same_bytes():
    figures, text = _bench("export", "--opt", "rows=3000", "--opt", "repeat=1")
    assert figures["rows_exported"] == 3000 and figures["same_bytes"] is True
    assert figures["python_us_per_row"] > 0 and figures["copy_us_per_row"] > 0 and "load" in text


def test_inbox_bench_checks_the_order_and_reports_the_baseline():
    figures, text = _bench("inbox", "--opt", "pending=300", "--opt", "repeat=1")
    assert (
        figures["pending_in_tenant"] == 300 and figures["query_ms"] > 0 and figures["baseline_query_ms"] > 0
    )
    assert "join-then-sort" in text and "load" in text


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_bench_process_that_dies_fails_the_bench_quickly():
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="died or hung"):
        # No runs: the loop divides by zero.
        budgets_bench._spawn(budgets_bench.bench_children.reserve_loop, [([],)], 1)
    # Not the 120 s start timeout, nor a wait for a count that never comes.
    assert time.monotonic() - started < 60
