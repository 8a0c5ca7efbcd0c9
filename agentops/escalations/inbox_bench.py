"""``manage.py bench inbox``: the operator inbox over ``pending`` pending escalations, beside the old query.

Seeds a ``bench-inbox`` tenant once (runs by INSERT … SELECT generate_series, escalations by
bulk_create; 10% high, 70% normal, 20% low urgency), then times in the same run: the inbox page
request (the 50 most urgent, and a later page by its cursor), its list query now (``pending_top``: one index range per urgency), and the old one (every
pending escalation joined to run and agent, sorted by a CASE on urgency, then cut at 200).
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Case, IntegerField, Value, When
from django.test import Client
from django.utils import timezone

from agentops.bench import benchmark, median_ms
from agentops.escalations.models import Escalation, EscalationStatus
from agentops.escalations.selectors import pending_cursor, pending_top
from runs.list_bench import insert_runs
from runs.models import Agent, Run
from tenants.models import Membership, Role, Tenant, Tier

OLD_URGENCY_RANK = Case(When(urgency="high", then=Value(0)), When(urgency="normal", then=Value(1)), default=Value(2), output_field=IntegerField())



@benchmark("inbox", help="Escalation inbox over N pending: per-urgency index ranges vs the join-then-sort baseline.", pending=10_000, repeat=7)
def bench_inbox(*, stdout: Any, pending: int, repeat: int) -> dict[str, Any]:
    if connection.vendor != "postgresql":
        raise RuntimeError("bench inbox seeds with generate_series: run it against PostgreSQL (DATABASE_URL).")
    tier, _ = Tier.objects.get_or_create(slug="bench", defaults={"name": "Benchmark"})
    tenant, _ = Tenant.objects.get_or_create(slug="bench-inbox", defaults={"name": "bench-inbox", "tier": tier})
    agent, _ = Agent.objects.get_or_create(tenant=tenant, name="bench", defaults={"system_prompt": "Benchmark agent."})
    have = Escalation.objects.for_tenant(tenant).filter(status=EscalationStatus.PENDING).count()
    if have < pending:
        runs_have = Run.objects.filter(tenant=tenant).count()
        insert_runs(tenant.pk, [agent.pk], runs_have + 1, runs_have + pending - have)
        new_runs = list(Run.objects.filter(tenant=tenant).order_by("-id").values_list("pk", flat=True)[: pending - have])
        now = timezone.now()
        Escalation.objects.bulk_create([
            Escalation(tenant=tenant, run_id=run_id, kind=Escalation.KIND_TOOL, tool_use_id=f"toolu_{run_id}", tool_name="issue_refund",
                       arguments={"amount": "10.00"}, arguments_sha256="0" * 64, gate_reason="bench",
                       urgency="high" if i % 10 == 0 else ("low" if i % 5 == 1 else "normal"),
                       requested_at=now - timedelta(seconds=i), sla_due_at=now + timedelta(hours=1), expires_at=now + timedelta(days=1))
            for i, run_id in enumerate(new_runs)
        ], batch_size=2000)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE runs_escalation")
        stdout.write(f"seeded {pending - have} pending escalations")
    n = Escalation.objects.for_tenant(tenant).filter(status=EscalationStatus.PENDING).count()
    user, _ = get_user_model().objects.get_or_create(username="bench-inbox-operator")
    Membership.objects.get_or_create(user=user, tenant=tenant, defaults={"role": Role.OPERATOR})
    client = Client()
    client.force_login(user)

    def page(after: str = "") -> None:
        resp = client.get(f"/t/{tenant.slug}/escalations/", {"after": after} if after else {})
        if resp.status_code != 200 or b"data-escalation=" not in resp.content:
            raise RuntimeError(f"the inbox answered {resp.status_code} without rows: the benchmark measured nothing")

    # A later page, reached by the cursor after the 200th most urgent (as "Next" links give it out).
    later = pending_cursor(pending_top(tenant=tenant, limit=200)[-1])

    def new() -> None:
        if len(pending_top(tenant=tenant, limit=200)) != min(200, n):
            raise RuntimeError("pending_top returned too few rows")

    def old() -> None:
        list(Escalation.objects.for_tenant(tenant).filter(status=EscalationStatus.PENDING).select_related("run", "run__agent")
             .annotate(urgency_rank=OLD_URGENCY_RANK).order_by("urgency_rank", "requested_at", "id")[:200])

    if [e.pk for e in pending_top(tenant=tenant, limit=200)] != [e.pk for e in Escalation.objects.for_tenant(tenant).filter(
            status=EscalationStatus.PENDING).annotate(r=OLD_URGENCY_RANK).order_by("r", "requested_at", "id")[:200]]:
        raise RuntimeError("the new inbox order differs from the old one")
    load_before = os.getloadavg()
    page_ms, new_ms, old_ms = median_ms(page, repeat), median_ms(new, repeat), median_ms(old, repeat)
    later_ms = median_ms(lambda: page(later), repeat) if n > 200 else page_ms
    load = os.getloadavg()
    stdout.write(f"{n} pending: page {page_ms:.1f} ms (after the 200th: {later_ms:.1f} ms); list query {new_ms:.1f} ms vs join-then-sort {old_ms:.1f} ms "
                 f"({old_ms / new_ms:.1f}×); load {load[0]:.2f} on {os.cpu_count()} cpus")
    return {"database": connection.vendor, "pending_in_tenant": n, "page_ms": round(page_ms, 2), "later_page_ms": round(later_ms, 2), "query_ms": round(new_ms, 2),
            "baseline_query_ms": round(old_ms, 2), "baseline_over_new": round(old_ms / new_ms, 1),
            "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in load]}
