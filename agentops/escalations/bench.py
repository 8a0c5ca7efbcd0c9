"""``manage.py bench approval-latency``: from the approve POST to the run's next step on a worker.

Starts real ``rqworker`` processes against the configured PostgreSQL and Redis, submits gated runs
(scripted ``email_customer`` scenario, an e-mail grant that requires approval) in a dedicated
``bench-escalations`` tenant, waits until every run is ``awaiting_approval``, then approves them
one at a time through the API (a real request through the middleware, the view and the decision
service) and measures until the worker records ``tool_start`` for that exact tool call.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection
from django.test import Client
from django.utils import timezone

from agentops.bench import benchmark
from agentops.escalations.models import Escalation
from runs.models import Agent, Run, RunEvent, RunStatus, ToolGrant
from runs.services import run_submit
from tenants.models import ApiKey, ApiScope, Role, Tenant, Tier
from tenants.services import api_key_create

TENANT_SLUG = "bench-escalations"
AGENT_NAME = "bench-approver"


def _database_url() -> str:
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    auth = f"{user}:{db['PASSWORD']}" if db.get("PASSWORD") else user
    return f"postgres://{auth}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{connection.settings_dict['NAME']}"


def _start_workers(n: int, *, preload: bool = False, worker_class: str = "agentops.worker.AgentWorker") -> list[subprocess.Popen[bytes]]:
    env = dict(os.environ)
    env.update({"DATABASE_URL": _database_url(), "REDIS_URL": settings.REDIS_URL, "DJANGO_SETTINGS_MODULE": "agentops.settings",
                "ANTHROPIC_API_KEY": "", "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "WARNING"})
    # agentops.worker imports the harness and the SDK at start, so the ``preload`` figures and the
    # plain ones run the same worker (kept for comparable runs). ``bench throughput`` passes
    # agentops.worker.ForkingAgentWorker to measure the fork-per-job worker beside the default.
    args = [sys.executable, str(settings.BASE_DIR / "manage.py"), "rqworker", "runs", "default",
            "--worker-class", worker_class, "--with-scheduler"]
    procs = []
    for i in range(n):
        log = open(settings.BASE_DIR / "var" / f"bench-approval-worker-{i}.log", "wb")  # noqa: SIM115 - lives as long as the worker
        procs.append(subprocess.Popen(args, cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    return procs


def _stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)  # our own process groups only
            except ProcessLookupError:
                pass
    for p in procs:
        p.wait(timeout=30)


def _setup() -> tuple[Any, Any, str]:
    tier, _ = Tier.objects.get_or_create(slug="bench", defaults={
        "name": "Bench", "task_cost_cap": Decimal("100"), "user_day_cost_cap": Decimal("10000"),
        "user_month_cost_cap": Decimal("10000"), "tenant_month_cost_cap": Decimal("100000"), "max_concurrent_runs": 1000,
        "api_rate_limit_per_minute": 100_000,
    })
    tenant, _ = Tenant.objects.get_or_create(slug=TENANT_SLUG, defaults={"name": "Bench: escalations", "tier": tier})
    agent, _ = Agent.objects.for_tenant(tenant).get_or_create(
        name=AGENT_NAME, tenant=tenant,
        defaults={"system_prompt": "You send e-mails when asked.", "model": "claude-haiku-4-5", "tools": ["send_email"], "max_tokens": 256},
    )
    ToolGrant.objects.for_tenant(tenant).update_or_create(tenant=tenant, tool_name="send_email", agent=agent, role="",
                                                          defaults={"requires_approval": True})
    key, raw = api_key_create(tenant=tenant, actor=None, name=f"bench {timezone.now():%Y-%m-%d %H:%M:%S}",
                              scopes=[ApiScope.ESCALATIONS], acts_as_role=Role.OPERATOR)
    return tenant, agent, raw


def _wait(predicate: Any, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return round(ordered[k], 1)


@benchmark("approval-latency", help="Approve POST → the tool starting on a real worker (p50/p95 ms).", runs=20, workers=2, preload=0)
def approval_latency(*, stdout: Any, runs: int, workers: int, preload: int) -> dict[str, Any]:
    tenant, agent, raw_key = _setup()
    procs = _start_workers(int(workers), preload=bool(preload))
    latencies: list[float] = []
    post_ms: list[float] = []
    try:
        batch = [run_submit(tenant=tenant, agent=agent, input="Tell the customer we got their request.", role=Role.OPERATOR,
                            metadata={"scenario": "email_customer", "bench": "approval-latency"}) for _ in range(int(runs))]
        ids = [r.pk for r in batch]
        _wait(lambda: Run.unscoped.filter(pk__in=ids, status=RunStatus.AWAITING_APPROVAL).count() == len(ids), 120,
              "every run to wait for approval", interval=0.2)
        client = Client(HTTP_AUTHORIZATION=f"Bearer {raw_key}", HTTP_HOST="127.0.0.1")
        for esc in Escalation.objects.for_tenant(tenant).filter(run_id__in=ids, status="pending").order_by("pk"):
            body = json.dumps({"decision": "approve", "arguments_sha256": esc.arguments_sha256, "comment": "bench"})
            t0 = timezone.now()
            started = time.perf_counter()
            resp = client.post(f"/api/v1/escalations/{esc.pk}/decide", data=body, content_type="application/json")
            post_ms.append((time.perf_counter() - started) * 1000)
            if resp.status_code != 200:
                raise RuntimeError(f"approve returned {resp.status_code}: {resp.content[:200]!r}")
            events = RunEvent.unscoped.filter(run_id=esc.run_id, type="tool_start", data__tool_use_id=esc.tool_use_id)
            _wait(events.exists, 30, f"tool_start of run {esc.run_id}", interval=0.002)
            latencies.append((events.values_list("at", flat=True).first() - t0).total_seconds() * 1000)
        _wait(lambda: Run.unscoped.filter(pk__in=ids, status=RunStatus.SUCCEEDED).count() == len(ids), 60, "the runs to finish")
    finally:
        _stop_workers(procs)
        ApiKey.objects.for_tenant(tenant).filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
    stdout.write(f"approved {len(latencies)} escalations with {workers} workers")
    return {
        "samples": len(latencies),
        "p50_ms": _pct(latencies, 50), "p95_ms": _pct(latencies, 95), "max_ms": round(max(latencies), 1),
        "mean_ms": round(statistics.fmean(latencies), 1), "post_p50_ms": _pct(post_ms, 50),
        "target_p95_ms": 1000, "met": _pct(latencies, 95) < 1000,
    }
