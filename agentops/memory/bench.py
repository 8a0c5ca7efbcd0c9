"""``manage.py bench memory-recall``: recall at run start over many facts, beside a bare indexed lookup.

Seeds ``facts`` facts over three ``bench-memory-*`` tenants (``subjects`` subjects each) with one
INSERT … SELECT generate_series per tenant (PostgreSQL; only the missing rows are added, so a second
run reuses them; the stored ``search`` tsvector is generated on insert). Then, in the same run, over
the same random subjects: :func:`agentops.memory.facts.recall` as a run's first model call does it
(full-text rank on the run's input + recency, the token budget, the rows read back), and the bare
indexed lookup of the subject's newest ten facts — the floor any recall pays. Prints the load.
"""

from __future__ import annotations

import random
import statistics
import time
from typing import Any

from django.db import connection
from django.utils import timezone

from agentops.bench import benchmark, machine_load
from agentops.memory import facts as memory_facts
from agentops.memory.models import Fact
from tenants.models import Tenant, Tier

TENANTS = ("bench-memory-a", "bench-memory-b", "bench-memory-c")
QUERY = "Hi, I was charged twice for my annual plan renewal and would like a refund by email please."

SEED_SQL = """
INSERT INTO memory_fact (tenant_id, subject, text, text_sha256, source, source_run_id, source_seq, agent_id, created_at,
    last_used_at, expires_at, flags, flagged)
SELECT %(tenant)s, 'CUST-' || (g %% %(subjects)s), t, encode(sha256(convert_to(t, 'UTF8')), 'hex'), 'tool', NULL, NULL, NULL,
    now() - make_interval(mins => g), NULL, CASE WHEN g %% 50 = 0 THEN now() - interval '1 day' END, '[]', false
FROM generate_series(%(first)s, %(last)s) AS g,
LATERAL (SELECT (ARRAY['Prefers replies by email', 'Was charged twice in March', 'Asked for a refund of the annual plan',
    'Lives in Lisbon and writes in Portuguese', 'Has a standing discount agreed with finance', 'Dislikes phone calls',
    'Renews every January', 'Had a parcel lost in transit', 'Uses the API, not the dashboard', 'Is the account owner'])[1 + g %% 10]
    || ' (note ' || g || ').' AS t) AS fact
"""


def _seed(total: int, subjects: int, stdout: Any) -> list[Tenant]:
    tier, _ = Tier.objects.get_or_create(slug="bench", defaults={"name": "Benchmark"})
    out = []
    for slug in TENANTS:
        tenant, _ = Tenant.objects.get_or_create(slug=slug, defaults={"name": slug, "tier": tier})
        want = total // len(TENANTS)
        have = Fact.objects.filter(tenant=tenant).count()
        if have < want:
            t0 = time.perf_counter()
            with connection.cursor() as cursor:
                cursor.execute(
                    SEED_SQL, {"tenant": tenant.pk, "subjects": subjects, "first": have + 1, "last": want}
                )
                cursor.execute("ANALYZE memory_fact")
            stdout.write(f"seeded {want - have} facts in {slug} in {time.perf_counter() - t0:.1f}s")
        out.append(tenant)
    return out


def _bare(tenant_id: int, subject: str) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM memory_fact WHERE tenant_id = %s AND subject = %s ORDER BY created_at DESC LIMIT 10",
            [tenant_id, subject],
        )
        return [r[0] for r in cursor.fetchall()]


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


@benchmark(
    "memory-recall",
    help="Recall at run start over 1M facts in 3 tenants (full-text + recency, budgeted) beside a bare indexed lookup.",
    facts=1_000_000,
    subjects=1000,
    repeat=300,
    budget=500,
)
def memory_recall(*, stdout: Any, facts: int, subjects: int, repeat: int, budget: int) -> dict[str, Any]:
    if connection.vendor != "postgresql":
        raise RuntimeError(
            "memory-recall seeds with generate_series and ranks with full-text search: run it against PostgreSQL."
        )
    load_before = machine_load()
    tenants = _seed(facts, subjects, stdout)
    rng = random.Random()  # fresh subjects each run: a replay would find its pages cached by the last one
    picks = [(rng.choice(tenants).pk, f"CUST-{rng.randrange(subjects)}") for _ in range(repeat)]
    now = timezone.now()
    recall_ms, bare_ms, recalled = [], [], 0
    _recall(picks[0], budget, now), _bare(*picks[0])  # warm both
    for tenant_id, subject in picks:
        t0 = time.perf_counter()
        got = _recall((tenant_id, subject), budget, now)
        t1 = time.perf_counter()
        _bare(tenant_id, subject)
        t2 = time.perf_counter()
        recall_ms.append((t1 - t0) * 1000)
        bare_ms.append((t2 - t1) * 1000)
        recalled += len(got)
    if not recalled:
        raise RuntimeError("no fact was recalled: the benchmark measured nothing")
    r50, r95 = _percentiles(recall_ms)
    b50, b95 = _percentiles(bare_ms)
    figures = {
        "database": connection.vendor,
        "facts_total": Fact.objects.filter(tenant__slug__in=TENANTS).count(),
        "facts_per_subject": facts // len(TENANTS) // subjects,
        "recalls": repeat,
        "facts_recalled_mean": round(recalled / repeat, 1),
        "recall_p50_ms": round(r50, 3),
        "recall_p95_ms": round(r95, 3),
        "bare_lookup_p50_ms": round(b50, 3),
        "bare_lookup_p95_ms": round(b95, 3),
        "load_before": load_before,
        "load_after": machine_load(),
    }
    stdout.write(
        f"recall p50 {r50:.2f} ms p95 {r95:.2f} ms | bare indexed lookup p50 {b50:.2f} ms p95 {b95:.2f} ms | "
        f"{figures['facts_recalled_mean']} facts recalled on average; load {figures['load_after']}"
    )
    return figures


def _recall(pick: tuple[int, str], budget: int, now: Any) -> list[Fact]:
    return memory_facts.recall(pick[0], pick[1], QUERY, budget, now)
