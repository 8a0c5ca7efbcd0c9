"""``manage.py bench prompt-fetch``: ``GET /api/v1/prompts/<name>?label=production`` p50/p99, with and
without ``If-None-Match``, beside the bare API-key check in the same run: the same endpoint, key and middleware with a label the
view refuses before any query (400), so the key lookup, scope check and rate limiter run and nothing else.

In-process (Django's test client, no network), on the database in DATABASE_URL. Target: the fetch adds
at most 1 ms p50 over the key check.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

from django.test import Client
from django.utils import timezone

from agentops.bench import benchmark
from agentops.prompts import services
from agentops.prompts.models import Prompt, PromptLabel, PromptVersion
from tenants.models import ApiKey, Tenant, Tier
from tenants.services import api_key_create


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return round(ordered[max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))], 3)


def _setup() -> tuple[Tenant, str]:
    tier, _ = Tier.objects.get_or_create(slug="bench", defaults={"name": "Benchmark"})
    tier.api_rate_limit_per_minute = 10_000_000  # the limiter still runs (it is part of the key check), it just never refuses
    tier.save(update_fields=["api_rate_limit_per_minute"])
    tenant, _ = Tenant.objects.get_or_create(slug="bench", defaults={"name": "Benchmark", "tier": tier})
    prompt = Prompt.objects.for_tenant(tenant).filter(name="bench-prompt").first()
    if prompt is None:
        prompt = services.prompt_create(tenant=tenant, actor=None, name="bench-prompt")
        text = "You are a benchmark agent. " * 200  # ~5 kB of system prompt, like a real one
        version = services.version_create(tenant=tenant, actor=None, prompt=prompt, data={"system": text, "model": "claude-haiku-4-5"})
        # Pointed directly: the benchmark measures the fetch, not the gate.
        PromptLabel.objects.for_tenant(tenant).filter(prompt=prompt, name="production").update(version=version, moved_at=timezone.now())
    return tenant, api_key_create(tenant=tenant, actor=None, name="bench prompts", scopes=["prompts"])[1]


def _time(client: Client, url: str, n: int, want: int, **headers: Any) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        resp = client.get(url, **headers)
        out.append((time.perf_counter() - t0) * 1000)
        if resp.status_code != want:
            raise RuntimeError(f"{url} answered {resp.status_code}, expected {want}: {resp.content[:200]!r}")
    return out


@benchmark("prompt-fetch", help="GET /api/v1/prompts/<name>?label=production p50/p99, with/without ETag, vs the bare key check.",
           requests=2000, warmup=100)
def prompt_fetch(*, stdout: Any, requests: int, warmup: int) -> dict[str, Any]:
    tenant, raw = _setup()
    url = "/api/v1/prompts/bench-prompt?label=production"
    bare_url = "/api/v1/prompts/bench-prompt?label=NOT-A-LABEL"
    fetch = auth = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    try:
        etag = fetch.get(url)["ETag"]
        load_before = os.getloadavg()
        for u, want, extra in ((url, 200, {}), (url, 304, {"HTTP_IF_NONE_MATCH": etag}), (bare_url, 400, {})):
            _time(fetch, u, int(warmup), want, **extra)
        # Interleaved in rounds so drift in machine load touches all three alike.
        plain: list[float] = []
        cached: list[float] = []
        base: list[float] = []
        for _ in range(max(1, int(requests) // 100)):
            plain += _time(fetch, url, 100, 200)
            cached += _time(fetch, url, 100, 304, HTTP_IF_NONE_MATCH=etag)
            base += _time(auth, bare_url, 100, 400)
        load_after = os.getloadavg()
    finally:
        ApiKey.objects.for_tenant(tenant).filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
    if not plain or not cached or not base:
        raise RuntimeError("measured nothing")
    size = len(PromptVersion.objects.for_tenant(tenant).get(prompt__name="bench-prompt", number=1).system)
    stdout.write(f"load average {load_before[0]:.2f} -> {load_after[0]:.2f} ({os.cpu_count()} cpus); {len(plain)} requests each; "
                 f"system prompt {size} chars")
    added = _pct(plain, 50) - _pct(base, 50)
    return {
        "samples": len(plain), "load_1m_before": round(load_before[0], 2), "load_1m_after": round(load_after[0], 2),
        "key_check_p50_ms": _pct(base, 50), "key_check_p99_ms": _pct(base, 99),
        "fetch_p50_ms": _pct(plain, 50), "fetch_p99_ms": _pct(plain, 99),
        "fetch_304_p50_ms": _pct(cached, 50), "fetch_304_p99_ms": _pct(cached, 99),
        "fetch_mean_ms": round(statistics.fmean(plain), 3),
        "added_p50_ms": round(added, 3), "added_304_p50_ms": round(_pct(cached, 50) - _pct(base, 50), 3),
        "target_added_p50_ms": 1.0, "met": added <= 1.0,
    }
