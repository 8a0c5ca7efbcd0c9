"""The tenant home panel for escalations (registered in settings.HOME_PANEL_PROVIDERS)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from agentops.escalations.selectors import escalation_counts, humanize_delta
from tenants.access import TenantContext
from tenants.models import Role


def panels(ctx: TenantContext) -> list[dict[str, Any]]:
    counts = escalation_counts(tenant=ctx.tenant)
    details = []
    if counts["overdue"]:
        details.append(f"{counts['overdue']} past SLA")
    if counts["high"]:
        details.append(f"{counts['high']} high urgency")
    if counts["oldest_age"] is not None:
        details.append(f"oldest waiting {humanize_delta(counts['oldest_age'].total_seconds())}")
    can_decide = ctx.role in (Role.ADMIN, Role.OPERATOR)
    return [{
        "label": "Pending escalations",
        "value": counts["pending"],
        "detail": " · ".join(details) or "nothing waiting",
        "url": reverse("escalations:inbox", kwargs={"slug": ctx.tenant.slug}) if can_decide else "",
        "tone": "danger" if counts["overdue"] else ("warn" if counts["pending"] else ""),
    }]
