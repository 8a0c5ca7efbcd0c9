"""``model-call`` benchmark: bare ``client.messages.create`` calls against the scripted ``default`` scenario.

It measures what one model call costs the harness when the model itself is instantaneous: the
SDK's request building, header/retry plumbing, JSON parsing into ``Message`` and the scripted
transport. The lead's ``step-overhead`` benchmark subtracts :func:`bare_call_latencies` from a
full harness step to get the harness's own overhead.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import anthropic

from agentops.bench import benchmark
from agentops.llm.gateway import _build_client
from agentops.llm.scripted import SCENARIO_HEADER

BENCH_MODEL = "claude-haiku-4-5"
_WARMUP = 5
_client: anthropic.Anthropic | None = None


def _scripted_client() -> anthropic.Anthropic:
    # Always scripted, whatever the settings: a benchmark must never reach the real API. Built by
    # the gateway's own factory, so the figures include exactly what the harness's client pays.
    global _client
    if _client is None:
        _client = _build_client(scripted=True, max_retries=2, timeout=120.0, api_key="")
    return _client


def _request(scenario: str) -> dict[str, Any]:
    return {
        "model": BENCH_MODEL,
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "Hello"}],
        "extra_headers": {SCENARIO_HEADER: scenario},
    }


def _latencies(call: Callable[[], object], n: int) -> list[float]:
    """Wall time (ms) of ``n`` calls of ``call``, after a short warm-up."""
    for _ in range(_WARMUP):
        call()
    latencies = []
    for _ in range(max(0, n)):
        started = time.perf_counter()
        call()
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def bare_call_latencies(n: int) -> list[float]:
    """Wall time (ms) of ``n`` bare ``client.messages.create`` calls (after a short warm-up)."""
    client, kwargs = _scripted_client(), _request("default")
    return _latencies(lambda: client.messages.create(**kwargs), n)


def bare_stream_latencies(n: int, scenario: str = "default") -> list[float]:
    """Wall time (ms) of ``n`` bare ``client.messages.stream`` calls read to the end: what the harness's
    streamed call costs in the SDK alone, before it relays a single delta."""
    client, kwargs = _scripted_client(), _request(scenario)

    def one() -> None:
        with client.messages.stream(**kwargs) as stream:
            for _event in stream:
                pass
            stream.get_final_message()

    return _latencies(one, n)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


@benchmark(
    "model-call", help="N bare client.messages.create calls against the scripted 'default' scenario", n=500
)
def model_call(*, stdout: Any = None, n: Any = 500) -> dict[str, Any]:
    count = max(1, int(n))
    started = time.perf_counter()
    latencies = bare_call_latencies(count)
    elapsed = time.perf_counter() - started
    return {
        "calls": count,
        "p50_ms": round(statistics.median(latencies), 3),
        "p99_ms": round(_percentile(latencies, 0.99), 3),
        "mean_ms": round(statistics.fmean(latencies), 3),
        "calls_per_s": round(count / sum(latencies) * 1000, 1) if sum(latencies) else 0.0,
        "wall_s": round(elapsed, 3),
    }
