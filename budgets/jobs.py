"""Background jobs: the periodic budgets tick (reconciler, month-end projections, estimate drift).

Run it from cron / a scheduler every minute or so (``manage.py budgets_tick``), or enqueue
``budgets_tick`` on the "default" queue. Every step is idempotent: alerts are once per window.
"""

from __future__ import annotations

from typing import Any

from budgets.alerts import drift_check, projection_check
from budgets.services import reconcile_reservations
from tenants.models import Tenant


def budgets_tick(*, stale_after_s: int = 600) -> dict[str, Any]:
    return {"reservations": reconcile_reservations(stale_after_s=stale_after_s), **budget_alerts()}


def budget_alerts() -> dict[str, int]:
    """Month-end projection and estimate-drift alerts for every active tenant."""
    out = {"projection_alerts": 0, "drift_alerts": 0}
    for tenant in Tenant.objects.filter(active=True).select_related("tier"):
        if projection_check(tenant=tenant) is not None:
            out["projection_alerts"] += 1
        out["drift_alerts"] += len(drift_check(tenant=tenant))
    return out
