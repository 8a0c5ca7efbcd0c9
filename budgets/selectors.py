"""Budget reads: the finance page's figures and plotly charts, cap utilisation, estimates, export.

Charts read :class:`DailyRollup` (one row per tenant/day/model/agent/user/prompt version), never
the ledger, so the page costs the same at a million ledger rows as at a thousand. The export
streams the ledger itself.
"""

from __future__ import annotations

import calendar
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import plotly.graph_objects as go
from django.contrib.auth import get_user_model
from django.db.models import Count, Q, QuerySet, Sum
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from budgets.charts import CAP_COLOUR, cap_line, colour_for, model_colours, money_label
from budgets.models import (
    AgentEstimate,
    CapAlert,
    CapCounter,
    CapScope,
    DailyRollup,
    EscrowLease,
    SpendEntry,
)
from budgets.policy import effective_caps
from budgets.pricing import Tokens, UnknownModelPrice, cost_of_tokens, price_for
from budgets.subjects import subjects, version_names
from tenants.models import Tenant

DIMENSIONS = {"model": "model", "agent": "agent_id", "user": "user_id", "prompt_version": "prompt_version_id", "tenant": "tenant_id"}
MAX_RANGE_DAYS = 400
_LAYOUT = {"margin": {"l": 60, "r": 10, "t": 40, "b": 40}, "height": 320, "legend": {"orientation": "h", "y": -0.2}, "showlegend": True,
           "font": {"family": "system-ui, sans-serif", "size": 12}, "paper_bgcolor": "#fff", "plot_bgcolor": "#fff"}


@dataclass(frozen=True)
class DateRange:
    start: date
    end: date

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]


def date_range_parse(params: Any, *, default_days: int = 30) -> DateRange:
    """``start``/``end`` (YYYY-MM-DD) from the query string; ValueError with a clear message if bad."""

    def one(name: str) -> date | None:
        raw = (params.get(name) or "").strip()
        if not raw:
            return None
        try:
            return date.fromisoformat(raw[:10]) if len(raw) == 10 else _bad(name)
        except ValueError:
            return _bad(name)

    return date_range(start=one("start"), end=one("end"), default_days=default_days)


def date_range(*, start: date | None, end: date | None, default_days: int = 30) -> DateRange:
    """The range from ``start`` to ``end`` (default: the ``default_days`` up to today); ValueError if too long."""
    end = end or timezone.now().date()
    start = start or end - timedelta(days=default_days - 1)
    if start > end:
        raise ValueError("The start date is after the end date.")
    if (end - start).days > MAX_RANGE_DAYS:
        raise ValueError(f"Choose a range of at most {MAX_RANGE_DAYS} days.")
    return DateRange(start, end)


def _bad(name: str) -> date:
    raise ValueError(f"{name} must be a date like 2026-01-31.")


def _rollups(tenant: Tenant | None, rng: DateRange) -> QuerySet[DailyRollup]:
    qs = DailyRollup.objects.filter(day__gte=rng.start, day__lte=rng.end)
    return qs.filter(tenant=tenant) if tenant is not None else qs


def _labels(dim: str, ids: set[Any]) -> dict[Any, str]:
    if dim == "agent":
        names = subjects().agent_names(ids=ids)
        return {i: names.get(i, "(none)" if not i else f"agent {i}") for i in ids}
    if dim == "user":
        names = dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "username"))
        return {i: names.get(i, "(API / none)" if not i else f"user {i}") for i in ids}
    if dim == "prompt_version":
        names = version_names(ids)
        return {i: names.get(i, f"version {i}") if i else "(inline prompt)" for i in ids}
    if dim == "tenant":
        names = dict(Tenant.objects.filter(pk__in=ids).values_list("pk", "name"))
        return {i: names.get(i, str(i)) for i in ids}
    return {i: str(i) for i in ids}


def spend_by_day(*, tenant: Tenant | None, rng: DateRange, by: str) -> dict[str, Any]:
    """Daily spend stacked by ``by``: a figure plus the totals (exact Decimals)."""
    column = DIMENSIONS[by]
    rows = _rollups(tenant, rng).values("day", column).annotate(cost=Sum("cost")).order_by()
    series: dict[Any, dict[date, Decimal]] = defaultdict(dict)
    total = Decimal(0)
    for r in rows:
        series[r[column]][r["day"]] = r["cost"]
        total += r["cost"]
    labels = _labels(by, set(series))
    days = rng.days
    fig = go.Figure()
    order = sorted(series, key=lambda k: -sum(series[k].values()))
    models = model_colours() if by == "model" else {}
    for key in order:
        fig.add_trace(go.Bar(x=[d.isoformat() for d in days], y=[float(series[key].get(d, 0)) for d in days], name=labels[key],
                             marker={"color": colour_for(by, key, labels[key], models)},
                             hovertemplate="%{x}: $%{y:,.4f}<extra>%{fullData.name}</extra>"))
    fig.update_layout(barmode="stack", yaxis={"title": "USD", "tickprefix": "$"}, title={"text": f"Spend per day by {by.replace('_', ' ')}"}, **_LAYOUT)
    return {"figure": json.loads(fig.to_json()), "total": total, "series": len(series)}


def cap_utilisation(*, tenant: Tenant, today: date | None = None) -> list[dict[str, Any]]:
    """Current-window utilisation of the tenant cap and of each user's caps (spent + in flight)."""
    today = today or timezone.now().date()
    month = today.replace(day=1)
    counters = CapCounter.objects.for_tenant(tenant).filter(
        Q(scope=CapScope.TENANT_MONTH, window_start=month) | Q(scope=CapScope.USER_MONTH, window_start=month)
        | Q(scope=CapScope.USER_DAY, window_start=today)
    )
    caps = effective_caps(tenant=tenant)
    users = _labels("user", {c.subject_id for c in counters if c.scope != CapScope.TENANT_MONTH})
    in_leases = _escrow_settled(tenant, today=today)
    out: list[dict[str, Any]] = []
    seen_tenant = False
    for c in counters:
        cap = c.cap if c.cap is not None else caps[c.scope]
        if c.scope == CapScope.TENANT_MONTH:
            seen_tenant = True
            cap = caps[c.scope]  # the cap in force now, even before the next call
        used = c.spent + c.reserved
        # An open escrow slice is reserved on the counter as a whole; what its calls settled already is spent.
        settled = in_leases.get((c.scope, c.subject_id), Decimal(0))
        out.append({
            "scope": c.scope, "label": CapScope(c.scope).label, "who": tenant.name if c.scope == CapScope.TENANT_MONTH else users.get(c.subject_id),
            "spent": c.spent + settled, "reserved": c.reserved - settled, "cap": cap,
            "percent": float(min(Decimal(100), used / cap * 100)) if cap else 100.0,
        })
    if not seen_tenant:
        out.append({"scope": CapScope.TENANT_MONTH, "label": CapScope.TENANT_MONTH.label, "who": tenant.name, "spent": Decimal(0),
                    "reserved": Decimal(0), "cap": caps[CapScope.TENANT_MONTH], "percent": 0.0})
    out.sort(key=lambda r: (r["scope"] != CapScope.TENANT_MONTH, -r["percent"]))
    return out


def _escrow_settled(tenant: Tenant, *, today: date) -> dict[tuple[str, int], Decimal]:
    """What calls under the tenant's open escrow leases settled so far (each lease keeps its own
    ``spent``), per current-window counter."""
    month = today.replace(day=1)
    out: dict[tuple[str, int], Decimal] = {}
    rows = (EscrowLease.objects.for_tenant(tenant).filter(status="open").values("user_id", "day")
            .annotate(s=Sum("spent")).order_by())
    for r in rows:
        keys = [(CapScope.TENANT_MONTH.value, tenant.pk)] if r["day"] >= month else []
        if r["user_id"]:
            keys += [(CapScope.USER_MONTH.value, r["user_id"])] if r["day"] >= month else []
            keys += [(CapScope.USER_DAY.value, r["user_id"])] if r["day"] == today else []
        for k in keys:
            out[k] = out.get(k, Decimal(0)) + (r["s"] or Decimal(0))
    return out


def utilisation_figure(rows: list[dict[str, Any]]) -> dict[str, Any]:
    top = rows[:12]
    # Every bar says its value, so 2% is readable and not a sliver; colour is never the only signal.
    fig = go.Figure(go.Bar(
        x=[r["percent"] for r in top], y=[f"{r['label']} · {r['who']}" for r in top], orientation="h", name="used of the cap",
        marker={"color": [CAP_COLOUR if r["percent"] >= 100 else "#e67700" if r["percent"] >= 80 else "#4e79a7" for r in top]},
        text=[f"{r['percent']:.1f}% · {money_label(r['spent'] + r['reserved'])} of {money_label(r['cap'])}" for r in top],
        textposition="auto", insidetextanchor="end", cliponaxis=False, hoverinfo="text+y",
    ))
    layout = dict(_LAYOUT, height=max(200, 70 + 34 * len(top)), margin={"l": 230, "r": 20, "t": 40, "b": 30})
    fig.update_layout(xaxis={"range": [0, 100], "ticksuffix": "%"}, yaxis={"autorange": "reversed", "ticksuffix": "  "}, title={"text": "Cap utilisation (current windows)"}, **layout)
    return json.loads(fig.to_json())


def projection(*, tenant: Tenant | None, today: date | None = None, cap: Decimal | None = None) -> dict[str, Any]:
    """Cumulative spend this month, the straight-line projection to month end and the cap."""
    today = today or timezone.now().date()
    month = today.replace(day=1)
    last = today.replace(day=calendar.monthrange(today.year, today.month)[1])
    qs = DailyRollup.objects.filter(day__gte=month, day__lte=today)
    if tenant is not None:
        qs = qs.filter(tenant=tenant)
    per_day = dict(qs.values_list("day").annotate(c=Sum("cost")).order_by())
    cum, xs, ys = Decimal(0), [], []
    for i in range(today.day):
        d = month + timedelta(days=i)
        cum += per_day.get(d, Decimal(0))
        xs.append(d.isoformat())
        ys.append(float(cum))
    projected = (cum / today.day * last.day).quantize(Decimal("0.01"))
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=xs, y=ys, name="Spent", mode="lines+markers", line={"color": "#4e79a7"}))
    fig.add_trace(go.Scatter(x=[today.isoformat(), last.isoformat()], y=[float(cum), float(projected)], name="Projection",
                             mode="lines+markers+text", text=["", money_label(projected)], textposition="top left",
                             line={"dash": "dash", "color": "#f28e2b"}))
    # Scaled to the spend, not the cap: $41 of a $5,000 cap is a visible line with the cap noted.
    yaxis: dict[str, Any] = {"tickprefix": "$", "rangemode": "tozero"}
    if cap is not None:
        shape, note, top = cap_line(cap, max(float(projected), float(cum)))
        yaxis["range"] = [0, top]
        fig.update_layout(shapes=[shape] if shape else [], annotations=[note])
    title = "This month: spend and projection" + (" against the cap" if cap is not None else "")
    fig.update_layout(title={"text": title}, yaxis=yaxis, xaxis={"range": [month.isoformat(), last.isoformat()]}, **_LAYOUT)
    return {"figure": json.loads(fig.to_json()), "spent": cum, "projected": projected, "cap": cap, "over": cap is not None and projected > cap}


class BadRunsCursor(ValueError):
    pass


def expensive_runs_cursor(run: Any) -> str:
    """Where the next page of "most expensive runs" starts: after this run (its cost, then id)."""
    return f"{run.cost}:{run.pk}"


def _costly_after(cursor: str) -> tuple[Decimal, int] | None:
    if not cursor:
        return None
    cost, sep, pk = cursor.partition(":")
    try:
        value = Decimal(cost) if sep and len(cursor) <= 60 and pk.isascii() and pk.isdigit() else None
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite():
        raise BadRunsCursor("The 'runs_after' cursor is not one this page gave out; start from the most expensive.")
    return value, int(pk)


def expensive_runs(*, tenant: Tenant, rng: DateRange, limit: int = 10, after: str = "") -> list[dict[str, Any]]:
    """The range's dearest runs, ``limit`` of them after the cursor ``after`` (``BadRunsCursor`` if malformed)."""
    start = timezone.make_aware(datetime.combine(rng.start, time.min))
    end = timezone.make_aware(datetime.combine(rng.end + timedelta(days=1), time.min))
    runs = subjects().costly_runs(tenant_id=tenant.pk, start=start, end=end, limit=limit, after=_costly_after(after))
    out = []
    for r in runs:
        # Backfilled demo history (budgets.demo) is spend without a trace, log or times: it is
        # listed as what it is, not linked as a run.
        demo = bool((r.metadata or {}).get("budgets_demo"))
        try:
            url = "" if demo else reverse("runs:detail", kwargs={"slug": tenant.slug, "run_id": r.pk})
        except NoReverseMatch:
            url = ""
        out.append({"run": r, "url": url, "demo": demo})
    return out


def unknown_outcomes(*, tenant: Tenant, rng: DateRange, limit: int = 20) -> dict[str, Any]:
    """Calls charged at their worst case because a crash hid their outcome: for finance to check
    against the provider's invoice (the real charge is at most this)."""
    qs = SpendEntry.objects.for_tenant(tenant).filter(unknown_outcome=True, day__gte=rng.start, day__lte=rng.end)
    total = qs.aggregate(s=Sum("cost"), n=Count("id"))
    return {"entries": list(qs.order_by("-at", "-id")[:limit]), "total": total["s"] or Decimal(0), "count": total["n"]}


def alerts_recent(*, tenant: Tenant, limit: int = 10) -> QuerySet[CapAlert]:
    return CapAlert.objects.for_tenant(tenant)[:limit]


def platform_totals(*, rng: DateRange) -> list[dict[str, Any]]:
    rows = _rollups(None, rng).values("tenant_id").annotate(cost=Sum("cost"), calls=Sum("calls")).order_by("-cost")
    names = _labels("tenant", {r["tenant_id"] for r in rows})
    return [{"tenant": names[r["tenant_id"]], "cost": r["cost"], "calls": r["calls"]} for r in rows]


# --- estimates ------------------------------------------------------------------------------------


def estimate_figures(est: AgentEstimate, *, agent_model: str) -> dict[str, Decimal]:
    """Cost per run / day / month from the estimate inputs.

    A run makes ``tool_calls + 1`` model calls; call k re-sends the first prompt plus every
    earlier turn (k outputs and k tool results). No caching is assumed, so it is an upper-side
    estimate of an agent that does not use prompt caching.
    """
    price = price_for(est.model or agent_model)
    calls = est.tool_calls + 1
    input_total = sum(est.input_tokens + k * (est.output_tokens + est.tool_result_tokens) for k in range(calls))
    per_run = cost_of_tokens(price, Tokens(input=input_total, output=est.output_tokens * calls))
    per_day = per_run * est.runs_per_day
    return {"per_run": per_run, "per_day": per_day, "per_month": per_day * 30}


def actual_cost_per_run(*, tenant: Tenant, agent_id: int, start: date, end: date) -> Decimal | None:
    lo = timezone.make_aware(datetime.combine(start, time.min))
    hi = timezone.make_aware(datetime.combine(end + timedelta(days=1), time.min))
    avg = subjects().average_run_cost(tenant_id=tenant.pk, agent_id=agent_id, start=lo, end=hi)
    return None if avg is None else Decimal(avg).quantize(Decimal("0.000001"))


def estimates_for(*, tenant: Tenant) -> list[dict[str, Any]]:
    today = timezone.now().date()
    ests = {e.agent_id: e for e in AgentEstimate.objects.for_tenant(tenant)}
    out = []
    for agent in subjects().agents(tenant_id=tenant.pk):
        est = ests.get(agent.pk)
        figures, error = None, ""
        if est is not None:
            try:
                figures = estimate_figures(est, agent_model=agent.model)
            except UnknownModelPrice as exc:
                error = str(exc)
        yesterday = actual_cost_per_run(tenant=tenant, agent_id=agent.pk, start=today - timedelta(days=1), end=today - timedelta(days=1))
        month = actual_cost_per_run(tenant=tenant, agent_id=agent.pk, start=today - timedelta(days=29), end=today)
        drift = None
        if figures and yesterday is not None and figures["per_run"]:
            drift = float((yesterday - figures["per_run"]) / figures["per_run"] * 100)
        out.append({"agent": agent, "estimate": est, "figures": figures, "error": error, "actual_yesterday": yesterday,
                    "actual_30d": month, "drift_pct": drift, "drifting": drift is not None and abs(drift) > 20})
    return out
