"""Online evaluator flags, counted: per flag, per agent and day, and the week-over-week drift alert.

Reads ``Run.flags`` (the union of a run's turn flags) with the ``has_item`` lookup, one conditional
count per known flag in a single query, so the counts cost one scan of the window's runs whatever
the number of flags. The evals page and the drift job read these; nothing here writes but
:func:`flag_drift_check`, which raises alerts through budgets' alert service (in-app + webhook).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from agentops.harness.evaluators import all_flags
from budgets.alerts import alert_raise
from budgets.models import AlertKind
from runs.models import Agent, Run
from tenants.models import Tenant

# A flag's rate "doubled" only over enough runs to mean something.
DRIFT_MIN_RUNS = 10
DRIFT_MIN_FLAGGED = 3


def _counts(flags: list[str]) -> dict[str, Count]:
    return {f"f{i}": Count("pk", filter=Q(flags__has_item=f)) for i, f in enumerate(flags)}


def flag_counts(*, tenant: Tenant | int, since: datetime | None = None, until: datetime | None = None,
                agent_id: int | None = None) -> dict[str, int]:
    """How many of the tenant's runs carry each flag (only flags that occur), in one query."""
    flags = all_flags()
    qs = Run.objects.for_tenant(tenant)
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    if until is not None:
        qs = qs.filter(created_at__lt=until)
    if agent_id is not None:
        qs = qs.filter(agent_id=agent_id)
    row = qs.aggregate(runs=Count("pk"), **_counts(flags))
    out = {f: row[f"f{i}"] for i, f in enumerate(flags) if row[f"f{i}"]}
    return out


@dataclass(frozen=True)
class DayRate:
    day: date
    agent_id: int
    runs: int
    flagged: dict[str, int]

    def rate(self, flag: str) -> float:
        return self.flagged.get(flag, 0) / self.runs if self.runs else 0.0


def flag_rates_by_day(*, tenant: Tenant | int, since: datetime, until: datetime | None = None,
                      agent_id: int | None = None) -> list[DayRate]:
    """Per agent and day (UTC): runs created and how many carry each flag."""
    flags = all_flags()
    qs = Run.objects.for_tenant(tenant).filter(created_at__gte=since)
    if until is not None:
        qs = qs.filter(created_at__lt=until)
    if agent_id is not None:
        qs = qs.filter(agent_id=agent_id)
    # Rows carry one count per flag under generated keys (f0, f1, ...), which the stubs cannot type.
    rows = cast(list[dict[str, Any]], list(
        qs.annotate(day=TruncDate("created_at")).values("day", "agent_id").annotate(runs=Count("pk"), **_counts(flags)).order_by("day", "agent_id")
    ))
    return [DayRate(r["day"], r["agent_id"], r["runs"], {f: r[f"f{i}"] for i, f in enumerate(flags) if r[f"f{i}"]}) for r in rows]


@dataclass(frozen=True)
class Drift:
    agent_id: int
    flag: str
    previous: float
    current: float
    runs: int
    flagged: int


def flag_drift(*, tenant: Tenant | int, now: datetime | None = None) -> list[Drift]:
    """Flags whose rate over the last 7 days is at least twice the 7 days before, per agent.

    A flag absent the week before counts as doubled once it reaches DRIFT_MIN_FLAGGED runs.
    """
    now = now or timezone.now()
    week_ago, two_weeks_ago = now - timedelta(days=7), now - timedelta(days=14)
    rows = flag_rates_by_day(tenant=tenant, since=two_weeks_ago, until=now)
    weeks: dict[tuple[int, bool], tuple[int, dict[str, int]]] = {}
    cut = week_ago.date()
    for r in rows:
        key = (r.agent_id, r.day >= cut)
        runs, flagged = weeks.get(key, (0, {}))
        merged = dict(flagged)
        for f, n in r.flagged.items():
            merged[f] = merged.get(f, 0) + n
        weeks[key] = (runs + r.runs, merged)
    out = []
    for (agent_id, current_week), (runs, flagged) in weeks.items():
        if not current_week or runs < DRIFT_MIN_RUNS:
            continue
        prev_runs, prev_flagged = weeks.get((agent_id, False), (0, {}))
        for flag, n in flagged.items():
            current = n / runs
            previous = prev_flagged.get(flag, 0) / prev_runs if prev_runs else 0.0
            if n >= DRIFT_MIN_FLAGGED and current >= 2 * previous:
                out.append(Drift(agent_id, flag, previous, current, runs, n))
    return out


def flag_drift_check(*, now: datetime | None = None) -> int:
    """The periodic job: one alert per (agent, flag, week) whose rate doubled. Returns alerts raised."""
    now = now or timezone.now()
    raised = 0
    tenants = Run.unscoped.filter(created_at__gte=now - timedelta(days=7)).values_list("tenant_id", flat=True).distinct()
    for tenant_id in tenants:
        drifts = flag_drift(tenant=tenant_id, now=now)
        if not drifts:
            continue
        names = dict(Agent.objects.for_tenant(tenant_id).filter(pk__in={d.agent_id for d in drifts}).values_list("pk", "name"))
        week = (now - timedelta(days=now.weekday())).date()
        for d in drifts:
            was = f"{d.previous:.0%}" if d.previous else "none"
            alert = alert_raise(
                tenant_id=tenant_id, kind=AlertKind.FLAG_RATE, scope=d.flag[:20], subject_id=d.agent_id, window_start=week,
                value=Decimal(f"{d.current:.4f}"),
                message=f"Agent {names.get(d.agent_id, d.agent_id)}: '{d.flag}' on {d.current:.0%} of runs this week "
                        f"({d.flagged} of {d.runs}), was {was} the week before.",
            )
            raised += alert is not None
    return raised
