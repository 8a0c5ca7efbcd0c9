"""Benchmark registry for ``manage.py bench``.

A benchmark is a function registered with :func:`benchmark` in one of ``BENCH_MODULES``; it
receives the parsed options and returns a dict of figures (times as ``*_ms``, rates as
``*_per_s``). The command prints that dict as one JSON object on the last line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

# Modules that register benchmarks; each capability adds its own.
BENCH_MODULES: list[str] = ["agentops.llm.bench", "runs.bench", "runs.bench_evaluators", "runs.list_bench", "agentops.escalations.bench",
                             "agentops.escalations.inbox_bench", "budgets.bench", "budgets.export_bench", "agentops.prompts.bench", "agentops.evals.bench", "runs.stream_bench"]


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
