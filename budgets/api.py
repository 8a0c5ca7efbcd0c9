"""The spend API: daily totals from the exact rollups, for finance tooling (scope ``spend``)."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from django.db.models import Sum
from django.http import HttpRequest, HttpResponse, JsonResponse

from budgets.models import DailyRollup
from budgets.selectors import date_range_parse
from budgets.services import effective_caps
from tenants.api import ApiContext, ApiError, api_view
from tenants.money import money_str

GROUPS = {"model": "model", "agent": "agent_id", "user": "user_id", "prompt_version": "prompt_version_id"}


_DECIMAL = {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?$", "description": "Exact decimal."}
_GROUP_ROW = {"type": "object", "properties": {"cost_usd": _DECIMAL, "calls": {"type": "integer"},
                                               "input_tokens": {"type": "integer"}, "output_tokens": {"type": "integer"}}}
SPEND_SCHEMA = {
    "title": "Spend",
    "type": "object",
    "properties": {
        "start": {"type": "string", "format": "date"}, "end": {"type": "string", "format": "date"},
        "group": {"enum": list(GROUPS)}, "total_usd": _DECIMAL,
        "caps_usd": {"type": "object", "additionalProperties": _DECIMAL},
        "days": {"type": "array", "items": {
            "type": "object",
            "properties": {"day": {"type": "string", "format": "date"}, "cost_usd": _DECIMAL, "calls": {"type": "integer"},
                           "groups": {"type": "object", "additionalProperties": _GROUP_ROW}},
            "required": ["day", "cost_usd", "calls", "groups"]}},
    },
    "required": ["start", "end", "group", "total_usd", "caps_usd", "days"],
    "additionalProperties": False,
}


@api_view(
    scope="spend", response={"GET 200": SPEND_SCHEMA},
    query={"start": {"type": "string", "format": "date", "description": "Default: 29 days before end."},
           "end": {"type": "string", "format": "date", "description": "Default: today."},
           "group": {"enum": list(GROUPS), "default": "model"}},
)
def spend(request: HttpRequest, api: ApiContext) -> HttpResponse:
    """Daily spend totals (exact decimals) from the rollups, grouped, with the tenant's effective caps.

    ``GET /api/v1/spend?start=YYYY-MM-DD&end=YYYY-MM-DD&group=model|agent|user|prompt_version``."""
    try:
        rng = date_range_parse(request.GET)
    except ValueError as exc:
        raise ApiError(400, "invalid_request", str(exc))
    group = request.GET.get("group", "model")
    if group not in GROUPS:
        raise ApiError(400, "invalid_request", f"group must be one of {', '.join(GROUPS)}.")
    field = GROUPS[group]
    rows = (
        DailyRollup.objects.filter(tenant=api.tenant, day__gte=rng.start, day__lte=rng.end)
        .values("day", field)
        .annotate(cost=Sum("cost"), calls=Sum("calls"), input_tokens=Sum("input_tokens"), output_tokens=Sum("output_tokens"))
        .order_by("day", field)
    )
    days: dict[str, dict[str, object]] = defaultdict(lambda: {"cost_usd": Decimal(0), "calls": 0, "groups": {}})
    total = Decimal(0)
    for row in rows:
        day = days[row["day"].isoformat()]
        day["cost_usd"] = day["cost_usd"] + row["cost"]  # type: ignore[operator]
        day["calls"] = day["calls"] + row["calls"]  # type: ignore[operator]
        day["groups"][str(row[field])] = {"cost_usd": money_str(row["cost"]), "calls": row["calls"],  # type: ignore[index]
                                          "input_tokens": row["input_tokens"], "output_tokens": row["output_tokens"]}
        total += row["cost"]
    caps = effective_caps(tenant=api.tenant)
    return JsonResponse({
        "start": rng.start.isoformat(), "end": rng.end.isoformat(), "group": group, "total_usd": money_str(total),
        "caps_usd": {k: money_str(v) for k, v in caps.items()},
        "days": [{"day": d, **{k: (money_str(v) if isinstance(v, Decimal) else v) for k, v in body.items()}} for d, body in sorted(days.items())],
    })
