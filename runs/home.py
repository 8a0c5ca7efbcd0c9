"""Run figures for the tenant home page (registered in settings.HOME_PANEL_PROVIDERS)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from runs.console_selectors import run_counts_today
from tenants.access import TenantContext


def panels(ctx: TenantContext) -> list[dict[str, Any]]:
    counts = run_counts_today(ctx.tenant)
    url = reverse("runs:list", kwargs={"slug": ctx.tenant.slug})
    failed = counts["failed"]
    live_detail = [f"{counts['queued']} queued"]
    if counts["awaiting"]:
        live_detail.append(f"{counts['awaiting']} awaiting approval")
    return [
        {
            "label": "Runs today",
            "value": counts["total"],
            "detail": f"{counts['succeeded']} succeeded · {failed} failed or capped",
            "url": url,
            "tone": "danger" if failed and failed * 2 >= counts["total"] else "warn" if failed else "",
        },
        {
            "label": "Running now",
            "value": counts["running"],
            "detail": " · ".join(live_detail),
            "url": url + "?status=running",
            "tone": "warn" if counts["awaiting"] else "",
        },
    ]
