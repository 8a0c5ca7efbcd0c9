"""The platform staff console (``/staff/``): every tenant at a glance — tier, spend this month
against its cap, runs today, open escalations, failing webhooks — and the tiers and model prices,
read-only with links to Django admin for edits, and the stdio commands tenants' MCP servers may run. Wiring floor: it reads every app's tables, which
is why it lives here and not in any one app. Staff only (staff_member_required)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.admin.views.decorators import staff_member_required
from django.db.models import Count, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from agentops.escalations.models import Escalation, EscalationStatus
from agentops.mcp.models import StdioCommand
from budgets.models import DailyRollup, ModelPrice
from budgets.services import effective_caps
from runs.models import Run
from tenants.models import Tenant, Tier, WebhookDelivery

MAX_TENANTS = 500  # one page; past this the admin's tenant list (searchable) is the place


def _by_tenant(rows: Any, key: str) -> dict[int, Any]:
    return {r["tenant_id"]: r[key] for r in rows}


def tenants_overview(*, now: datetime) -> list[dict[str, Any]]:
    """One row per tenant. Each figure is one grouped query over all tenants (the platform's own
    view, deliberately unscoped), so the page costs five queries plus one cap lookup per tenant."""
    today = timezone.localdate(now)
    day_start = timezone.make_aware(datetime.combine(today, time.min))
    month = today.replace(day=1)
    tenants = list(Tenant.objects.select_related("tier").order_by("name")[:MAX_TENANTS])
    spent = _by_tenant(DailyRollup.objects.filter(day__gte=month, day__lte=today).values("tenant_id").annotate(s=Sum("cost")).order_by(), "s")
    runs = _by_tenant(Run.unscoped.filter(created_at__gte=day_start).values("tenant_id").annotate(n=Count("id")).order_by(), "n")
    open_esc = _by_tenant(Escalation.unscoped.filter(status=EscalationStatus.PENDING).values("tenant_id").annotate(n=Count("id")).order_by(), "n")
    failing = _by_tenant(WebhookDelivery.unscoped.filter(status__in=(WebhookDelivery.FAILED, WebhookDelivery.REFUSED),
                                                         created_at__gte=now - timedelta(hours=24))
                         .values("tenant_id").annotate(n=Count("id")).order_by(), "n")
    out = []
    for t in tenants:
        cap = effective_caps(tenant=t)["tenant_month"]
        used = spent.get(t.pk) or Decimal(0)
        out.append({"tenant": t, "spent": used, "cap": cap, "percent": float(min(Decimal(100), used / cap * 100)) if cap else 100.0,
                    "runs_today": runs.get(t.pk, 0), "open_escalations": open_esc.get(t.pk, 0), "failing_webhooks": failing.get(t.pk, 0)})
    return out


@staff_member_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    return render(request, "staff/home.html", {
        "rows": tenants_overview(now=now), "tiers": Tier.objects.order_by("tenant_month_cost_cap", "name"),
        "prices": ModelPrice.objects.filter(effective_to__isnull=True).order_by("model"), "max_tenants": MAX_TENANTS,
        "mcp_commands": StdioCommand.objects.annotate(server_count=Count("servers")).order_by("key"),
    })
