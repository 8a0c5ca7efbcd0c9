"""Prompt-cache savings per agent for the spend page, from the daily rollups.

Savings = what the same calls would have cost with every prompt token at the base input rate
(no cache: no writes at 1.25x/2x, no reads at 0.1x) − what the ledger charged. Hit ratio = cache
reads / all prompt tokens (plain input + writes + reads). Exact Decimals; each (model, day) is
priced at the price in force that day, as the ledger priced its entries.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, time
from decimal import Decimal
from typing import Any

from django.db.models import Sum
from django.utils import timezone

from budgets.models import DailyRollup
from budgets.pricing import Tokens, UnknownModelPrice, cost_of_tokens, price_for
from budgets.subjects import subjects
from tenants.models import Tenant


def cache_savings(*, tenant: Tenant, start: Any, end: Any) -> list[dict[str, Any]]:
    """Per agent with spend in [start, end]: cost, uncached cost, savings, hit ratio; dearest first."""
    rows = (DailyRollup.objects.filter(tenant=tenant, day__gte=start, day__lte=end)
            .values("agent_id", "model", "day")
            .annotate(cost=Sum("cost"), i=Sum("input_tokens"), o=Sum("output_tokens"), w5=Sum("cache_write_5m_tokens"),
                      w1=Sum("cache_write_1h_tokens"), r=Sum("cache_read_tokens"))
            .order_by())
    acc: dict[int, dict[str, Any]] = defaultdict(lambda: {"cost": Decimal(0), "uncached": Decimal(0), "prompt": 0, "read": 0, "unpriced": False})
    for row in rows:
        a = acc[row["agent_id"]]
        prompt = row["i"] + row["w5"] + row["w1"] + row["r"]
        a["cost"] += row["cost"]
        a["prompt"] += prompt
        a["read"] += row["r"]
        try:
            price = price_for(row["model"], at=timezone.make_aware(datetime.combine(row["day"], time(12))))
        except UnknownModelPrice:
            a["unpriced"] = True
            a["uncached"] += row["cost"]
            continue
        a["uncached"] += cost_of_tokens(price, Tokens(input=prompt, output=row["o"]))
    names = subjects().agent_names(ids=set(acc))
    out = [{"agent_id": agent_id, "agent": names.get(agent_id, "(none)" if not agent_id else f"agent {agent_id}"),
            "cost": a["cost"], "uncached": a["uncached"], "savings": a["uncached"] - a["cost"],
            "hit_ratio": (Decimal(a["read"]) / Decimal(a["prompt"])) if a["prompt"] else None,
            "hit_percent": (Decimal(100 * a["read"]) / Decimal(a["prompt"])).quantize(Decimal("0.1")) if a["prompt"] else None,
            "unpriced": a["unpriced"]} for agent_id, a in acc.items()]
    return sorted(out, key=lambda r: (-r["cost"], r["agent"]))
