"""The ``model-call`` benchmark and the latency helper the lead's ``step-overhead`` reuses."""

from __future__ import annotations

from typing import Any

from agentops.bench import BENCH_MODULES
from agentops.llm.bench import bare_call_latencies, model_call


def test_bare_call_latencies() -> None:
    latencies = bare_call_latencies(20)
    assert len(latencies) == 20
    assert all(0 < ms < 1000 for ms in latencies)


def test_model_call_is_registered_and_reports_figures(settings: Any) -> None:
    # Scripted whatever the settings say: a benchmark never reaches the real API.
    settings.ANTHROPIC_API_KEY = "sk-ant-api03-real-looking"
    # (Not through registry(): it imports every helper's bench module, which may be mid-edit.)
    assert "agentops.llm.bench" in BENCH_MODULES
    figures = model_call(n="30")
    assert figures["calls"] == 30
    assert 0 < figures["p50_ms"] <= figures["p99_ms"]
    assert figures["calls_per_s"] > 0
