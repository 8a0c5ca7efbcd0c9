"""``manage.py bench runs-list``: the run list at volume, keyset pages beside the OFFSET/COUNT baseline.

Seeds ``runs`` runs over three ``bench-list-*`` tenants with one INSERT … SELECT generate_series per
tenant (PostgreSQL; only the missing rows are added, so a second run reuses them), then times, in the
same run and on the same rows: the full page request (view, template) for the first page, a deep page,
a status filter and a text search; and each of those through the old path (``Paginator``: ``COUNT(*)``
and ``OFFSET``, ``SELECT DISTINCT outcome`` per request). Prints the load average with the figures.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db import connection
from django.test import Client

from agentops.bench import benchmark, median_ms
from agentops.keyset import encode, keyset_page
from runs import console_selectors as cs
from runs.models import Agent, Run
from tenants.models import Membership, Role, Tenant, Tier

TENANTS = ("bench-list-a", "bench-list-b", "bench-list-c")
SHARES = (1 / 3, 1 / 3, 1 / 3)

# Words cycled through the seeded inputs; "refund" lands in one input of 7, "chargeback" in one of 997.
SEED_SQL = """
INSERT INTO runs_run (tenant_id, agent_id, submitter_role, input, metadata, status, outcome, error_type, error_message,
    result, model_used, lease_owner, attempt, iterations, job_id, reschedules, cancel_requested, pause_requested, cost,
    input_tokens, output_tokens, trace_id, created_at, updated_at, flags, playground, prompt_sha256)
SELECT %(tenant)s, %(agent)s, 'operator',
    'Customer ' || g || ' asks about ' || (ARRAY['a refund','their parcel','an invoice','a password reset','a delivery date','a discount','an order'])[1 + g %% 7]
        || CASE WHEN g %% 997 = 0 THEN ' and a chargeback' ELSE '' END,
    '{}', (ARRAY['succeeded','succeeded','succeeded','failed','capped'])[1 + g %% 5],
    (ARRAY['end_turn','end_turn','end_turn','max_iterations','tenant_month'])[1 + g %% 5], '', '',
    'Answered case ' || g, 'claude-haiku-4-5', '', 1, 1 + g %% 9, '', 0, false, false, (g %% 1000) / 10000.0,
    100 + g %% 1000, 50, '', now() - make_interval(secs => g), now(), '{}', false, ''
FROM generate_series(%(first)s, %(last)s) AS g
"""


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cpus"


def _seed(total: int, stdout: Any) -> list[tuple[Tenant, Agent]]:
    tier, _ = Tier.objects.get_or_create(slug="bench", defaults={"name": "Benchmark"})
    out = []
    for slug, share in zip(TENANTS, SHARES, strict=True):
        tenant, _ = Tenant.objects.get_or_create(slug=slug, defaults={"name": slug, "tier": tier})
        agent, _ = Agent.objects.get_or_create(tenant=tenant, name="bench", defaults={"system_prompt": "Benchmark agent."})
        want = int(total * share)
        have = Run.objects.filter(tenant=tenant).count()
        if have < want:
            t0 = time.perf_counter()
            with connection.cursor() as cursor:
                cursor.execute(SEED_SQL, {"tenant": tenant.pk, "agent": agent.pk, "first": have + 1, "last": want})
                cursor.execute("ANALYZE runs_run")
            stdout.write(f"seeded {want - have} runs in {slug} in {time.perf_counter() - t0:.1f}s")
        out.append((tenant, agent))
    return out



def _old_path(tenant: Tenant, page: int, **filters: Any) -> int:
    """The list as it was: Paginator (COUNT(*) and OFFSET) and SELECT DISTINCT outcome per request."""
    paginator = Paginator(cs.runs_for_list(tenant=tenant, **filters), 50)
    rows = list(paginator.get_page(page).object_list)
    list(Run.objects.for_tenant(tenant).exclude(outcome="").order_by("outcome").values_list("outcome", flat=True).distinct()[:100])
    return len(rows) + paginator.count


def _new_path(tenant: Tenant, filters: dict[str, Any], after: str) -> Callable[[], Any]:
    """The list now: one keyset page and the cached outcome facet."""
    def fetch() -> Any:
        return keyset_page(cs.runs_for_list(tenant=tenant, **filters), field="created_at", after=after, size=50), cs.outcomes_for_tenant(tenant)
    return fetch


@benchmark("runs-list", help="Run list at volume: keyset pages vs the OFFSET/COUNT baseline, same run, same rows.",
           runs=100_000, deep_page=200, repeat=7)
def runs_list(*, stdout: Any, runs: int, deep_page: int, repeat: int) -> dict[str, Any]:
    if connection.vendor != "postgresql":
        raise RuntimeError("runs-list seeds with generate_series: run it against PostgreSQL (DATABASE_URL).")
    tenants = _seed(runs, stdout)
    tenant, _agent = tenants[0]
    in_tenant = Run.objects.filter(tenant=tenant).count()
    user, _ = get_user_model().objects.get_or_create(username="bench-list-admin")
    Membership.objects.get_or_create(user=user, tenant=tenant, defaults={"role": Role.ADMIN})
    client = Client()
    client.force_login(user)
    url = f"/t/{tenant.slug}/runs/"
    deep_page = max(1, min(deep_page, in_tenant // 50 - 2))
    deep_row = Run.objects.filter(tenant=tenant).order_by("-created_at", "-id").values_list("created_at", "pk")[deep_page * 50 - 1]
    deep_cursor = encode(*deep_row)

    def get(params: dict[str, str]) -> Callable[[], Any]:
        def fetch() -> Any:
            resp = client.get(url, params)
            if resp.status_code != 200 or b'<tr data-run="' not in resp.content:
                raise RuntimeError(f"{url} {params} answered {resp.status_code} with no rows: the benchmark measured nothing")
            return resp
        return fetch

    cases = {
        "first_page": ({}, lambda: _old_path(tenant, 1)),
        "deep_page": ({"after": deep_cursor}, lambda: _old_path(tenant, deep_page + 1)),
        "filter_failed": ({"status": "failed"}, lambda: _old_path(tenant, 1, status="failed")),
        "search_chargeback": ({"q": "chargeback"}, lambda: _old_path(tenant, 1, q="chargeback")),
        "search_refund": ({"q": "refund"}, lambda: _old_path(tenant, 1, q="refund")),
    }
    figures: dict[str, Any] = {"database": connection.vendor, "runs_total": runs, "deep_page_used": deep_page + 1, "runs_in_tenant": in_tenant, "load_before": _load()}
    for name, (params, old) in cases.items():
        page_ms = median_ms(get(params), repeat)
        filters: dict[str, Any] = {k: v for k, v in params.items() if k != "after"}
        new_ms = median_ms(_new_path(tenant, filters, params.get("after", "")), repeat)
        old_ms = median_ms(old, repeat)
        figures[f"{name}_page_ms"] = round(page_ms, 2)
        figures[f"{name}_queries_ms"] = round(new_ms, 2)
        figures[f"{name}_baseline_queries_ms"] = round(old_ms, 2)
        figures[f"{name}_baseline_over_new"] = round(old_ms / new_ms, 1) if new_ms else None
        stdout.write(f"{name:18} page {page_ms:8.2f} ms | queries {new_ms:8.2f} ms vs OFFSET/COUNT {old_ms:8.2f} ms")
    figures["load_after"] = _load()
    stdout.write(f"{in_tenant} runs in {tenant.slug} ({runs} in 3 tenants); load {figures['load_after']}")
    return figures
