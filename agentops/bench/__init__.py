"""Benchmark registry for ``manage.py bench``.

A benchmark is a function registered with :func:`benchmark` in one of ``BENCH_MODULES``; it
receives the parsed options and returns a dict of figures (times as ``*_ms``, rates as
``*_per_s``). The command prints that dict as one JSON object on the last line, with the machine's
load before and after, and fails (non-zero exit) when :func:`nothing_measured` finds no figure.
"""

from __future__ import annotations

import os
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

from django.db import connection

# Modules that register benchmarks; each capability adds its own.
BENCH_MODULES: list[str] = ["agentops.llm.bench", "runs.bench", "runs.bench_evaluators", "runs.list_bench", "runs.page_bench", "runs.stream_bench",
                             "agentops.escalations.bench", "agentops.escalations.inbox_bench", "budgets.bench", "budgets.export_bench", "tenants.audit_bench",
                             "agentops.prompts.bench", "agentops.evals.bench", "agentops.evals.throughput_bench",
                             "agentops.memory.bench"]


@dataclass
class Benchmark:
    name: str
    help: str
    func: Callable[..., dict[str, Any]]
    options: dict[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, Benchmark] = {}


def benchmark(name: str, *, help: str, **options: Any) -> Callable[[Callable[..., dict[str, Any]]], Callable[..., dict[str, Any]]]:
    """Register ``func(**options) -> figures``; ``options`` are defaults, overridable with ``--opt key=value``."""
    def decorator(func: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        _REGISTRY[name] = Benchmark(name=name, help=help, func=func, options=options)
        return func

    return decorator


def registry() -> dict[str, Benchmark]:
    for module in BENCH_MODULES:
        import_module(module)
    return dict(sorted(_REGISTRY.items()))


# Figure names that are measurements (times, rates: ``p50_ms``, ``page_ms_median``, ``copy_us_per_row``,
# ``runs_per_s``); option values and counts are not.
_MEASURE = re.compile(r"(^|_)(ms|us|per_s|seconds)(_|$)")


def median_ms(fn: Callable[[], Any], repeat: int) -> float:
    """Call ``fn`` once to warm it, then ``repeat`` times; the median wall time in milliseconds."""
    fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def page_get(client: Any, url: str, params: dict[str, str], *, must: bytes) -> Callable[[], Any]:
    """A GET of ``url`` through the test ``client`` that fails unless it answers 200 with ``must`` in the
    body (a page with nothing on it measured nothing)."""
    def fetch() -> Any:
        resp = client.get(url, params)
        if resp.status_code != 200 or must not in resp.content:
            raise RuntimeError(f"{url} {params} answered {resp.status_code} without {must!r}: the benchmark measured nothing")
        return resp

    return fetch


def machine_load() -> str:
    """The load average (1, 5, 15 min) and the core count, printed beside every figure."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cpus"


def vacuum(*tables: str) -> bool:
    """``VACUUM (ANALYZE)`` the tables a bench writes, so every run starts from the same state even on a
    server running without autovacuum (this machine's shared PostgreSQL): otherwise each run leaves dead
    row versions that slow the next one's updates of the same rows. Skipped off PostgreSQL and inside a
    transaction (a bench under a test); True when it ran."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return False
    with connection.cursor() as cur:
        cur.execute(f"VACUUM (ANALYZE) {', '.join(connection.ops.quote_name(t) for t in tables)}")
    return True


def nothing_measured(figures: dict[str, Any], options: dict[str, Any]) -> str:
    """Why ``figures`` measured nothing ('' when they did): no positive measurement, or a zero rate."""
    measures = {k: v for k, v in figures.items() if k not in options and _MEASURE.search(k)
                and isinstance(v, int | float) and not isinstance(v, bool)}
    if not any(v > 0 for v in measures.values()):
        return f"no positive measurement among {sorted(measures) or 'its figures'}"
    zero_rates = sorted(k for k, v in measures.items() if k.endswith("_per_s") and v <= 0)
    return f"zero rates: {', '.join(zero_rates)}" if zero_rates else ""
