"""The spend API (a django-ninja router): daily totals from the exact rollups, for finance tooling
(scope ``spend``)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from django.db.models import Sum
from django.http import HttpRequest
from ninja import Query, Router

from budgets.models import DailyRollup
from budgets.selectors import date_range
from budgets.services import effective_caps
from tenants.api import ApiError, ApiKeyAuth, Money, QueryDate, ResponseBody, api_key
from tenants.money import money_str

GROUPS = {"model": "model", "agent": "agent_id", "user": "user_id", "prompt_version": "prompt_version_id"}
Group = Literal["model", "agent", "user", "prompt_version"]

router = Router(tags=["spend"], auth=ApiKeyAuth("spend"))


class GroupSpend(ResponseBody):
    cost_usd: Money
    calls: int
    input_tokens: int
    output_tokens: int


class DaySpend(ResponseBody):
    day: date
    cost_usd: Money
    calls: int
    groups: dict[str, GroupSpend]


class Spend(ResponseBody):
    start: date
    end: date
    group: Group
    total_usd: Money
    caps_usd: dict[str, Money]
    days: list[DaySpend]


@router.get("/spend", url_name="api_spend", response=Spend)
def spend(
    request: HttpRequest,
    start: QueryDate | None = Query(None, description="Default: 29 days before end."),
    end: QueryDate | None = Query(None, description="Default: today."),
    group: Group = Query("model"),
) -> dict[str, Any]:
    """Daily spend totals (exact decimals) from the rollups, grouped, with the tenant's effective caps."""
    tenant = api_key(request).tenant
    try:
        rng = date_range(start=start, end=end)
    except ValueError as exc:
        raise ApiError(400, "invalid_request", str(exc))
    field = GROUPS[group]
    rows = (
        DailyRollup.objects.filter(tenant=tenant, day__gte=rng.start, day__lte=rng.end)
        .values("day", field)
        .annotate(cost=Sum("cost"), calls=Sum("calls"), input_tokens=Sum("input_tokens"), output_tokens=Sum("output_tokens"))
        .order_by("day", field)
    )
    days: dict[str, dict[str, Any]] = defaultdict(lambda: {"cost_usd": Decimal(0), "calls": 0, "groups": {}})
    total = Decimal(0)
    for row in rows:
        day = days[row["day"].isoformat()]
        day["cost_usd"] += row["cost"]
        day["calls"] += row["calls"]
        day["groups"][str(row[field])] = {"cost_usd": money_str(row["cost"]), "calls": row["calls"],
                                          "input_tokens": row["input_tokens"], "output_tokens": row["output_tokens"]}
        total += row["cost"]
    caps = effective_caps(tenant=tenant)
    return {
        "start": rng.start.isoformat(), "end": rng.end.isoformat(), "group": group, "total_usd": money_str(total),
        "caps_usd": {k: money_str(v) for k, v in caps.items()},
        "days": [{"day": d, **body, "cost_usd": money_str(body["cost_usd"])} for d, body in sorted(days.items())],
    }
