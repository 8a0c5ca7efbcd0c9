"""``manage.py bench audit-log``: the audit log at volume, keyset pages beside the OFFSET/COUNT baseline.

Seeds ``events`` audit events in a ``bench-audit`` tenant with one INSERT … SELECT generate_series (only
the missing ones; a second invocation reuses them): six actions, one of them rare (1 in 1,000). Then
times, in the same run on the same rows, the page request (view and template, an admin) for the first
page, a deep page reached by its keyset cursor, one common action, the rare action and a prefix
(``member.``); beside each, the old path (``Paginator``: ``COUNT(*)`` and ``OFFSET``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db import connection
from django.test import Client

from agentops.bench import benchmark, machine_load, median_ms, page_get
from agentops.keyset import encode
from tenants import selectors
from tenants.models import AuditEvent, Membership, Role, Tenant, Tier

SLUG = "bench-audit"
SEED_SQL = """
INSERT INTO tenants_auditevent (tenant_id, action, target_type, target_id, target_repr, before, after, at)
SELECT %(tenant)s,
    CASE WHEN g %% 1000 = 1 THEN 'tenant.kill_switch'
         ELSE (ARRAY['run.start','run.cancel','apikey.create','member.add','member.role'])[1 + g %% 5] END,
    'run', g::text, 'Run #' || g, NULL, '{"status": "queued"}', now() - make_interval(secs => g * 5)
FROM generate_series(%(first)s, %(last)s) AS g
"""


def _old(tenant: Tenant, page: int, action: str) -> Callable[[], Any]:
    def fetch() -> int:
        qs = AuditEvent.objects.for_tenant(tenant).select_related("actor", "actor_key")
        paginator = Paginator(qs.filter(action__startswith=action) if action else qs, 50)
        return len(list(paginator.get_page(page).object_list)) + paginator.count

    return fetch


@benchmark(
    "audit-log",
    help="Audit log at volume: first/deep page, an action, a rare action, a prefix; keyset vs OFFSET/COUNT.",
    events=300_000,
    deep_page=200,
    repeat=7,
)
def audit_log(*, stdout: Any, events: int, deep_page: int, repeat: int) -> dict[str, Any]:
    if connection.vendor != "postgresql":
        raise RuntimeError("audit-log seeds with generate_series: run it against PostgreSQL (DATABASE_URL).")
    tier, _ = Tier.objects.get_or_create(slug="bench", defaults={"name": "Benchmark"})
    tenant, _ = Tenant.objects.get_or_create(slug=SLUG, defaults={"name": "Bench: audit log", "tier": tier})
    have = AuditEvent.objects.for_tenant(tenant).count()
    if have < events:
        with connection.cursor() as cursor:
            cursor.execute(SEED_SQL, {"tenant": tenant.pk, "first": have + 1, "last": events})
            cursor.execute("ANALYZE tenants_auditevent")
        stdout.write(f"seeded {events - have} audit events in {SLUG}")
    user, _ = get_user_model().objects.get_or_create(username="bench-audit-admin")
    Membership.objects.get_or_create(user=user, tenant=tenant, defaults={"role": Role.ADMIN})
    client = Client()
    client.force_login(user)
    url = f"/t/{SLUG}/audit/"
    deep = max(1, min(deep_page, events // 50 - 2))
    deep_cursor = encode(
        *AuditEvent.objects.for_tenant(tenant).order_by("-at", "-id").values_list("at", "pk")[deep * 50 - 1]
    )
    cases = {
        "first_page": {},
        "deep_page": {"after": deep_cursor},
        "action_common": {"action": "run.start"},
        "action_rare": {"action": "tenant.kill_switch"},
        "action_prefix": {"action": "member."},
    }
    selectors.audit_actions(tenant)  # the filter's choices, cached as on any request after the first
    figures: dict[str, Any] = {
        "database": connection.vendor,
        "events_in_tenant": max(have, events),
        "deep_page_used": deep + 1,
        "load_before": machine_load(),
    }
    for name, params in cases.items():
        page_ms = median_ms(page_get(client, url, params, must=b"<td><code>"), repeat)
        old_ms = median_ms(
            _old(tenant, deep + 1 if "after" in params else 1, params.get("action", "")), repeat
        )
        figures[f"{name}_page_ms"] = round(page_ms, 2)
        figures[f"{name}_baseline_queries_ms"] = round(old_ms, 2)
        stdout.write(f"{name:14} page p50 {page_ms:7.2f} ms | OFFSET/COUNT queries alone {old_ms:8.2f} ms")
    figures["load_after"] = machine_load()
    stdout.write(f"{figures['events_in_tenant']} events in {SLUG}: load {figures['load_after']}")
    return figures
