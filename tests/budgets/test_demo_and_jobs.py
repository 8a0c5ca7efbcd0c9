"""The demo backfill (idempotent, marked, exact rollups) and the periodic tick."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.db.models import Sum

from budgets.demo import run as demo_run
from budgets.jobs import budgets_tick
from budgets.models import CapCounter, DailyRollup, SpendEntry

pytestmark = pytest.mark.django_db


def test_demo_backfill_is_marked_idempotent_and_rollups_match(tenant, members, agent, monkeypatch):
    import budgets.demo as demo

    monkeypatch.setattr(demo, "ROWS_PER_TENANT", {"acme": 600})
    ctx = SimpleNamespace(tenants={"acme": tenant}, say=lambda m: None)
    demo_run(ctx)
    demo_run(ctx)
    entries = SpendEntry.objects.filter(tenant=tenant)
    assert entries.count() == 600 and not entries.filter(is_demo=False).exists()
    assert len(set(entries.values_list("day", flat=True))) > 60
    by_day = dict(entries.values_list("day").annotate(s=Sum("cost")))
    rolled = dict(DailyRollup.objects.filter(tenant=tenant).values_list("day").annotate(s=Sum("cost")))
    assert by_day == rolled
    month = CapCounter.unscoped.get(tenant=tenant, scope="tenant_month")
    assert month.spent == entries.filter(day__gte=month.window_start).aggregate(s=Sum("cost"))["s"]


def test_tick_runs_clean(tenant):
    out = budgets_tick()
    assert out["reservations"] == {"checked": 0, "settled": 0, "unknown_outcome": 0}


def test_tight_caps_command(tenant, capsys):
    call_command("budgets_tight_caps", "acme", "--task", "0.01")
    assert "task $0.01" in capsys.readouterr().out
