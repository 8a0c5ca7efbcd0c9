"""Flags counted: the run list's ?flag= filter, per-flag counts, and the week-over-week drift alert."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from budgets.models import AlertKind, CapAlert
from runs.flag_stats import flag_counts, flag_drift, flag_drift_check, flag_rates_by_day
from tenants.models import WebhookDelivery
from tests.runs_console.factories import AgentFactory, RunFactory, runs_url

pytestmark = pytest.mark.django_db


def test_the_run_list_filters_by_flag_and_links_each_flag(agent, admin, other_tenant):
    claim = RunFactory(agent=agent, flags=["unsupported_claim"])
    both = RunFactory(agent=agent, flags=["injection", "unsupported_claim"])
    RunFactory(agent=agent, flags=[])
    RunFactory(agent=AgentFactory(tenant=other_tenant), flags=["unsupported_claim"])
    resp = admin.get(runs_url("list"), {"flag": "unsupported_claim"})
    assert resp.status_code == 200
    assert [r.pk for r in resp.context["runs"]] == [both.pk, claim.pk]
    assert b'href="?flag=injection"' in resp.content
    assert admin.get(runs_url("list"), {"flag": "no_such_flag"}).status_code == 400


def test_flag_counts_are_per_tenant_and_per_flag(agent, other_tenant):
    RunFactory(agent=agent, flags=["unsupported_claim"])
    RunFactory(agent=agent, flags=["injection", "unsupported_claim"])
    RunFactory(agent=agent, flags=[])
    RunFactory(agent=AgentFactory(tenant=other_tenant), flags=["pii"])
    assert flag_counts(tenant=agent.tenant) == {"injection": 1, "unsupported_claim": 2}
    assert flag_counts(tenant=other_tenant) == {"pii": 1}


def _week(agent, now, *, days_ago: int, runs: int, flagged: int, flag: str = "unsupported_claim") -> None:  # type: ignore[no-untyped-def]
    for i in range(runs):
        RunFactory(agent=agent, created_at=now - timedelta(days=days_ago, hours=i % 20), flags=[flag] if i < flagged else [])


def test_a_flag_rate_that_doubles_week_over_week_raises_one_alert_and_webhook(agent, clock):
    now = timezone.now()
    _week(agent, now, days_ago=10, runs=20, flagged=2)   # 10 % the week before
    _week(agent, now, days_ago=2, runs=20, flagged=4)    # 20 % this week: doubled
    days = flag_rates_by_day(tenant=agent.tenant, since=now - timedelta(days=14))
    assert sum(d.runs for d in days) == 40 and sum(d.flagged.get("unsupported_claim", 0) for d in days) == 6
    drift = flag_drift(tenant=agent.tenant, now=now)
    assert [(d.flag, d.previous, d.current) for d in drift] == [("unsupported_claim", 0.1, 0.2)]
    assert flag_drift_check(now=now) == 1
    assert flag_drift_check(now=now) == 0  # once per agent, flag and week
    alert = CapAlert.objects.get(tenant=agent.tenant, kind=AlertKind.FLAG_RATE)
    assert alert.scope == "unsupported_claim" and alert.subject_id == agent.pk and "20% of runs" in alert.message
    assert WebhookDelivery.objects.filter(tenant=agent.tenant, event="evals.flag_rate").count() == 1


def test_a_rate_that_did_not_double_raises_nothing(agent, clock):
    now = timezone.now()
    _week(agent, now, days_ago=10, runs=20, flagged=3)   # 15 %
    _week(agent, now, days_ago=2, runs=20, flagged=5)    # 25 %: up, not doubled
    assert flag_drift(tenant=agent.tenant, now=now) == []
    assert flag_drift_check(now=now) == 0
