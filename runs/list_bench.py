"""``manage.py bench runs-list``: the run list at 10k / 100k / 1M runs, keyset pages beside the OFFSET/COUNT baseline.

For each size in ``sizes`` the runs are spread over three tenants of their own (``bench-list-<size>-a/b/c``),
seeded in SQL (``INSERT … SELECT generate_series``, in chunks; only the missing rows are added, so a second
invocation reuses them: seeding is keyed by size). Then, in the same run and on the same rows, it times the
full page request (view and template, the ``-a`` tenant, an admin) for the first page, a deep page (reached by
its keyset cursor), a status filter, an agent filter, a rare and a common text search, and the spend page's "most expensive runs" query (30 days, first and next
page); beside each page, the old
path (``Paginator``: ``COUNT(*)`` and ``OFFSET``, ``SELECT DISTINCT outcome`` per request). Reports the p50
of each, the growth from the second-largest size to the largest (the 100k → 1M ratio by default) and the load.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from agentops.bench import benchmark, machine_load, page_get
from agentops.keyset import encode, keyset_page
from runs import console_selectors as cs
from runs.budget_subjects import RunSubjects
from runs.models import Agent, Run
from tenants.models import Membership, Role, Tenant, Tier

PARTS = ("a", "b", "c")
AGENTS = ("triage", "billing", "shipping", "accounts", "returns")
CHUNK = 100_000
SPREAD_S = 30 * 86_400  # a tenant's runs span the last 30 days, whatever their number

# Words cycled through the seeded inputs; "refund" lands in one input of 7, "chargeback" in one of 997.
SEED_SQL = """
INSERT INTO runs_run (tenant_id, agent_id, submitter_role, input, metadata, status, outcome, error_type, error_message,
    result, model_used, lease_owner, attempt, iterations, job_id, reschedules, cancel_requested, pause_requested, cost,
    input_tokens, output_tokens, trace_id, created_at, updated_at, flags, playground, prompt_sha256)
SELECT %(tenant)s, (%(agents)s::bigint[])[1 + g %% cardinality(%(agents)s::bigint[])], 'operator',
    'Customer ' || g || ' asks about ' || (ARRAY['a refund','their parcel','an invoice','a password reset','a delivery date','a discount','an order'])[1 + g %% 7]
        || CASE WHEN g %% 997 = 1 THEN ' and a chargeback' ELSE '' END,
    '{}', (ARRAY['succeeded','succeeded','succeeded','failed','capped'])[1 + g %% 5],
    (ARRAY['end_turn','end_turn','end_turn','max_iterations','tenant_month'])[1 + g %% 5], '', '',
    'Answered case ' || g, 'claude-haiku-4-5', '', 1, 1 + g %% 9, '', 0, false, false, (g %% 1000) / 10000.0,
    100 + g %% 1000, 50, '', now() - make_interval(secs => g * %(spacing)s), now(), '[]', false, ''
FROM generate_series(%(first)s, %(last)s) AS g
"""


def insert_runs(
    tenant_id: int, agent_ids: list[int], first: int, last: int, *, spacing_s: float = 1.0
) -> None:
    """Runs ``first``…``last`` of a tenant in one INSERT … SELECT (run g is ``g * spacing_s`` seconds old)."""
    with connection.cursor() as cursor:
        cursor.execute(
            SEED_SQL,
            {"tenant": tenant_id, "agents": agent_ids, "first": first, "last": last, "spacing": spacing_s},
        )


def _tenant(slug: str) -> tuple[Tenant, list[Agent]]:
    tier, _ = Tier.objects.get_or_create(slug="bench", defaults={"name": "Benchmark"})
    tenant, _ = Tenant.objects.get_or_create(slug=slug, defaults={"name": slug, "tier": tier})
    agents = [
        Agent.objects.get_or_create(tenant=tenant, name=name, defaults={"system_prompt": "Benchmark agent."})[
            0
        ]
        for name in AGENTS
    ]
    return tenant, agents


def seed(size: int, stdout: Any) -> list[tuple[Tenant, list[Agent]]]:
    """Three tenants with ``size // 3`` runs each, for this size only; adds only what is missing."""
    out = []
    want = size // 3
    for part in PARTS:
        tenant, agents = _tenant(f"bench-list-{size}-{part}")
        have = Run.objects.filter(tenant=tenant).count()
        t0 = time.perf_counter()
        for first in range(have + 1, want + 1, CHUNK):
            with transaction.atomic():
                insert_runs(
                    tenant.pk,
                    [a.pk for a in agents],
                    first,
                    min(first + CHUNK - 1, want),
                    spacing_s=SPREAD_S / want,
                )
        if have < want:
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE runs_run")
            stdout.write(f"seeded {want - have} runs in {tenant.slug} in {time.perf_counter() - t0:.1f}s")
        out.append((tenant, agents))
    return out


def _old_path(tenant: Tenant, page: int, **filters: Any) -> Callable[[], Any]:
    """The list as it was: Paginator (COUNT(*) and OFFSET) and SELECT DISTINCT outcome per request."""

    def fetch() -> int:
        paginator = Paginator(cs.runs_for_list(tenant=tenant, **filters), 50)
        rows = list(paginator.get_page(page).object_list)
        list(
            Run.objects.for_tenant(tenant)
            .exclude(outcome="")
            .order_by("outcome")
            .values_list("outcome", flat=True)
            .distinct()[:100]
        )
        return len(rows) + paginator.count

    return fetch


def _new_path(tenant: Tenant, filters: dict[str, Any], after: str) -> Callable[[], Any]:
    """The list now: one keyset page, its gated flags and the cached outcome facet."""

    def fetch() -> Any:
        page = keyset_page(
            cs.runs_for_list(tenant=tenant, **filters), field="created_at", after=after, size=50
        )
        return cs.mark_gated(page.items, tenant=tenant), cs.outcomes_for_tenant(tenant)

    return fetch


def _interleaved(fns: dict[int, Callable[[], Any]], repeat: int) -> dict[int, float]:
    """Median ms of each size's ``fn``, the sizes timed in turn within each round (each warmed once first):
    a burst of load on this shared machine then falls on every size alike, not on the one being timed."""
    for fn in fns.values():
        fn()
    samples: dict[int, list[float]] = {size: [] for size in fns}
    for _ in range(repeat):
        for size, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            samples[size].append((time.perf_counter() - t0) * 1000)
    return {size: statistics.median(ms) for size, ms in samples.items()}


def _deep(size: int, deep_page: int) -> int:
    """The deep page's number less one, kept inside the tenant's runs."""
    return max(1, min(deep_page, size // 3 // 50 - 2))


def _cases(
    size: int, tenant: Tenant, agent: Agent, *, deep_page: int
) -> dict[str, dict[str, Callable[[], Any]]]:
    """What is timed at one size: per case, the page request, its queries now and the OFFSET/COUNT path."""
    user, _ = get_user_model().objects.get_or_create(username="bench-list-admin")
    Membership.objects.get_or_create(user=user, tenant=tenant, defaults={"role": Role.ADMIN})
    client = Client()
    client.force_login(user)
    url = f"/t/{tenant.slug}/runs/"
    deep = _deep(size, deep_page)
    # The cursor a reader holds after ``deep`` pages (found once with OFFSET here; the page itself never uses one).
    deep_cursor = encode(*cs.runs_for_list(tenant=tenant).values_list("created_at", "pk")[deep * 50 - 1])
    params_of: dict[str, dict[str, str]] = {
        "first_page": {},
        "deep_page": {"after": deep_cursor},
        "filter_failed": {"status": "failed"},
        "filter_agent": {"agent": str(agent.pk)},
        "search_rare": {"q": "chargeback"},
        "search_common": {"q": "refund"},
    }
    cases: dict[str, dict[str, Callable[[], Any]]] = {}
    for name, params in params_of.items():
        filters: dict[str, Any] = {k: v for k, v in params.items() if k not in ("after", "agent")}
        if "agent" in params:
            filters["agent_id"] = agent.pk
        cases[name] = {
            "page": page_get(client, url, params, must=b'<tr data-run="'),
            "queries": _new_path(tenant, filters, params.get("after", "")),
            "baseline_queries": _old_path(tenant, deep + 1 if "after" in params else 1, **filters),
        }
    # The spend page's "most expensive runs" over the tenant's 30 days: its first page and the next (by cursor).
    now = timezone.now()
    start, end = now - timedelta(days=31), now + timedelta(days=1)

    def costly(after: tuple[Decimal, int] | None = None) -> list[Run]:
        return RunSubjects().costly_runs(tenant_id=tenant.pk, start=start, end=end, limit=11, after=after)

    last = costly()[9]
    cases["expensive_runs"] = {"queries": costly}
    cases["expensive_runs_next"] = {"queries": lambda: costly((last.cost, last.pk))}
    return cases


@benchmark(
    "runs-list",
    help="Run list at 10k/100k/1M runs in 3 tenants: first/deep page, filters, text search; keyset vs OFFSET/COUNT.",
    sizes="10000,100000,1000000",
    deep_page=200,
    repeat=9,
    baseline=1,
)
def runs_list(*, stdout: Any, sizes: Any, deep_page: int, repeat: int, baseline: Any) -> dict[str, Any]:
    if connection.vendor != "postgresql":
        raise RuntimeError("runs-list seeds with generate_series: run it against PostgreSQL (DATABASE_URL).")
    chosen = sorted(int(s) for s in str(sizes).split(",") if s.strip())
    figures: dict[str, Any] = {"database": connection.vendor, "sizes": chosen, "load_before": machine_load()}
    per_size = {}
    for size in chosen:
        tenant, agents = seed(size, stdout)[0]
        per_size[size] = _cases(size, tenant, agents[1], deep_page=deep_page)
        figures[f"{size}_runs_in_tenant"] = Run.objects.filter(tenant=tenant).count()
        figures[f"{size}_deep_page_used"] = _deep(size, deep_page) + 1
    with_baseline = str(baseline) not in ("0", "false", "no")
    for name, kinds in per_size[chosen[0]].items():
        for kind in kinds:
            if kind == "baseline_queries" and not with_baseline:
                continue
            for size, ms in _interleaved(
                {size: per_size[size][name][kind] for size in chosen}, repeat
            ).items():
                figures[f"{size}_{name}_{kind}_ms"] = round(ms, 2)
        for size in chosen:
            new, old = figures[f"{size}_{name}_queries_ms"], figures.get(f"{size}_{name}_baseline_queries_ms")
            line = f"{size:>8} {name:19}"
            if f"{size}_{name}_page_ms" in figures:
                line += f" page p50 {figures[f'{size}_{name}_page_ms']:7.2f} ms |"
            line += f" queries {new:7.2f} ms"
            if old is not None:
                figures[f"{size}_{name}_baseline_over_new"] = round(old / new, 1) if new else None
                line += f" vs OFFSET/COUNT {old:8.2f} ms"
            stdout.write(line)
        stdout.write(f"load {machine_load()}")
    if len(chosen) >= 2:
        small, big = chosen[-2], chosen[-1]
        for key in [k for k in figures if k.startswith(f"{big}_") and k.endswith("_page_ms")]:
            case = key[len(f"{big}_") : -len("_page_ms")]
            before = figures[f"{small}_{case}_page_ms"]
            figures[f"growth_{case}"] = round(figures[key] / before, 2) if before else None
        stdout.write(
            f"growth {small} -> {big} runs (page p50): "
            + ", ".join(f"{k[len('growth_') :]} {v}x" for k, v in figures.items() if k.startswith("growth_"))
        )
    figures["load_after"] = machine_load()
    return figures
