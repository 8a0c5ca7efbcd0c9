"""Cost alerts: 80 % / 100 % of a cap, the month-end projection above the tenant cap, and an agent's
cost per run drifting from its estimate. Each is raised at most once per window (a unique key) and
sent as a webhook.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from budgets.models import AgentEstimate, AlertKind, CapAlert, CapScope, DailyRollup
from budgets.policy import effective_caps
from budgets.pricing import UnknownModelPrice
from budgets.selectors import actual_cost_per_run, estimate_figures
from budgets.subjects import subjects
from tenants.models import Tenant
from tenants.webhooks import webhook_send


def alert_threshold(*, tenant_id: int, scope: str, subject_id: int, window: date, kind: str, value: Decimal | None, cap: Decimal) -> None:
    """Raise the 80 % / 100 % alert for this window, once (100 % implies 80 % was passed)."""
    kinds = [AlertKind.PCT80, AlertKind.PCT100] if kind == AlertKind.PCT100 else [AlertKind.PCT80]
    label = CapScope(scope).label if scope in CapScope.values else scope
    for k in kinds:
        pct = "100%" if k == AlertKind.PCT100 else "80%"
        # The task scope's window is a fixed sentinel date: name the run instead of a window.
        where = f"run {subject_id}" if scope == CapScope.TASK else f"window {window:%Y-%m-%d}"
        alert_raise(
            tenant_id=tenant_id, kind=k, scope=scope, subject_id=subject_id, window_start=window, value=value, cap=cap,
            message=f"{label} spend reached {pct} of the ${cap.normalize():f} cap ({where}).",
        )


_PCT80 = Decimal("0.8")


def alert_counters(*, tenant_id: int, counters: list[tuple[Any, ...]]) -> None:
    """80 % / 100 % alerts for counters just charged: ``(scope, subject, window, spent, cap)`` rows."""
    for scope, subject, window, spent, cap in counters:
        if cap is None or spent is None:
            continue  # no cap on this counter: no threshold to pass
        # PostgreSQL's NUMERIC arrives as a Decimal already; SQLite's as a float or string.
        spent = spent if isinstance(spent, Decimal) else Decimal(str(spent))
        cap = cap if isinstance(cap, Decimal) else Decimal(str(cap))
        if isinstance(window, str):
            window = date.fromisoformat(window)
        if cap and spent >= cap * _PCT80:
            kind = AlertKind.PCT100 if spent >= cap else AlertKind.PCT80
            alert_threshold(tenant_id=tenant_id, scope=scope, subject_id=subject, window=window, kind=kind, value=spent, cap=cap)


ALERT_EVENTS: dict[str, str] = {AlertKind.PROJECTION: "budget.projection", AlertKind.DRIFT: "budget.drift", AlertKind.FLAG_RATE: "evals.flag_rate"}


def alert_raise(
    *, tenant_id: int, kind: str, scope: str, subject_id: int, window_start: date, message: str,
    value: Decimal | None = None, cap: Decimal | None = None,
) -> CapAlert | None:
    """Record an alert (the in-app notice) and send its webhook — at most once per window.

    The unique key (tenant, kind, scope, subject, window) decides who sends: a concurrent
    duplicate hits the constraint and does nothing.
    """

    try:
        with transaction.atomic():
            alert = CapAlert.objects.create(
                tenant_id=tenant_id, kind=kind, scope=scope, subject_id=subject_id, window_start=window_start,
                message=message[:300], value=value, cap=cap,
            )
            tenant = Tenant.objects.get(pk=tenant_id)
            webhook_send(
                tenant=tenant, event=ALERT_EVENTS.get(kind, "budget.threshold"),
                payload={
                    "text": f"[{tenant.name}] {message}", "tenant": tenant.slug, "kind": kind, "scope": scope,
                    "subject_id": subject_id, "window_start": window_start.isoformat(),
                    "value": None if value is None else str(value), "cap": None if cap is None else str(cap),
                },
            )
    except IntegrityError:
        return None
    return alert


def projection_for(*, tenant: Tenant, today: date | None = None) -> dict[str, Decimal]:
    """Month-end projection from this month's run rate (spend so far / days elapsed × days in month)."""
    today = today or timezone.now().date()
    month = today.replace(day=1)
    days_in_month = calendar.monthrange(today.year, today.month)[1]
    spent = DailyRollup.objects.filter(tenant=tenant, day__gte=month, day__lte=today).aggregate(s=Sum("cost"))["s"] or Decimal(0)
    elapsed = today.day
    projected = spent / elapsed * days_in_month if elapsed else spent
    cap = effective_caps(tenant=tenant)[CapScope.TENANT_MONTH]
    return {"spent": spent, "projected": projected.quantize(Decimal("0.0001")), "cap": cap}


def projection_check(*, tenant: Tenant, today: date | None = None) -> CapAlert | None:
    p = projection_for(tenant=tenant, today=today)
    if p["projected"] <= p["cap"]:
        return None
    month = (today or timezone.now().date()).replace(day=1)
    return alert_raise(
        tenant_id=tenant.pk, kind=AlertKind.PROJECTION, scope=CapScope.TENANT_MONTH, subject_id=tenant.pk, window_start=month,
        value=p["projected"], cap=p["cap"],
        message=f"Month-end spend projected at ${p['projected']:.2f}, above the ${p['cap']:.2f} tenant monthly cap.",
    )


def drift_check(*, tenant: Tenant, day: date | None = None) -> list[CapAlert]:
    """Alert when an agent's actual cost per run over ``day`` drifts more than 20 % from its estimate."""
    day = day or (timezone.now().date() - timedelta(days=1))
    alerts = []
    ests = list(AgentEstimate.objects.for_tenant(tenant))
    agents = {a.pk: a for a in subjects().agents(tenant_id=tenant.pk)} if ests else {}
    for est in ests:
        agent = agents.get(est.agent_id)
        if agent is None:  # the agent is gone; its estimate is history
            continue
        try:
            per_run = estimate_figures(est, agent_model=agent.model)["per_run"]
        except UnknownModelPrice:
            continue
        actual = actual_cost_per_run(tenant=tenant, agent_id=est.agent_id, start=day, end=day)
        if actual is None or not per_run:
            continue
        drift = (actual - per_run) / per_run
        if abs(drift) > Decimal("0.2"):
            a = alert_raise(
                tenant_id=tenant.pk, kind=AlertKind.DRIFT, scope="agent", subject_id=est.agent_id, window_start=day,
                value=actual, cap=per_run,
                message=f"Agent {agent.name}: actual ${actual:.4f}/run on {day:%Y-%m-%d} is {drift:+.0%} off the ${per_run:.4f} estimate.",
            )
            if a:
                alerts.append(a)
    return alerts
