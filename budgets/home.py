"""The tenant home panel: spend this month against the tenant cap."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.urls import reverse
from django.utils import timezone

from budgets.models import CapCounter, CapScope
from budgets.services import effective_caps
from tenants.access import TenantContext
from tenants.money import usd_display


def panels(ctx: TenantContext) -> list[dict[str, Any]]:
    month = timezone.now().date().replace(day=1)
    counter = CapCounter.objects.for_tenant(ctx.tenant).filter(scope=CapScope.TENANT_MONTH, window_start=month).first()
    spent = counter.spent if counter else Decimal(0)
    reserved = counter.reserved if counter else Decimal(0)
    cap = effective_caps(tenant=ctx.tenant)[CapScope.TENANT_MONTH]
    pct = float(min(Decimal(100), (spent + reserved) / cap * 100)) if cap else 100.0
    can_see = ctx.role in ("admin", "finance")
    return [{
        "label": "Spend this month vs cap",
        "value": usd_display(spent),
        "detail": f"of {usd_display(cap)} cap" + (f" · {usd_display(reserved)} in flight" if reserved else ""),
        "percent": round(pct, 1),
        "url": reverse("budgets:spend", kwargs={"slug": ctx.tenant.slug}) if can_see else "",
        "tone": "danger" if pct >= 100 else "warn" if pct >= 80 else "",
    }]
