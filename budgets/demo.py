"""Demo step: 90 days of spend history per demo tenant, clearly marked as demo data.

Ledger rows carry ``is_demo=True`` (rollups keep the flag in their key) and their runs carry
``metadata["budgets_demo"]``. Re-running the step deletes the previous demo history first, so it
is idempotent and never touches real traffic. Caps counters are then resynced from the ledger.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from budgets.bench import fill_ledger
from budgets.models import DailyRollup, SpendEntry
from budgets.services import counters_resync
from budgets.subjects import subjects

ROWS_PER_TENANT = {"acme": 9000, "globex": 4000, "initech": 2500}


def demo_history_clear(*, tenant: Any) -> None:
    with transaction.atomic():
        SpendEntry.unscoped.filter(tenant=tenant, is_demo=True).delete()
        DailyRollup.objects.filter(tenant=tenant, is_demo=True).delete()
        subjects().demo_runs_delete(tenant_id=tenant.pk)


def run(ctx: Any) -> None:
    tenants = getattr(ctx, "tenants", {}) or {}
    for slug, tenant in tenants.items():
        demo_history_clear(tenant=tenant)
        rows = ROWS_PER_TENANT.get(slug, 2000)
        fill_ledger(tenant=tenant, rows=rows, days=90, runs=40, is_demo=True, seed=sum(map(ord, slug)))
        counters_resync(tenant=tenant)
    if hasattr(ctx, "say"):
        ctx.say(f"budgets: backfilled 90 days of demo spend history for {', '.join(tenants) or 'no tenants'} (marked is_demo)")
