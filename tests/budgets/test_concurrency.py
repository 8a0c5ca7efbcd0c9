"""Caps under real concurrency: separate processes, separate PostgreSQL connections."""

from __future__ import annotations

import multiprocessing as mp
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum

from budgets.models import CapCounter, DailyRollup, Reservation, SpendEntry, TenantCaps
from budgets.services import reconcile_reservations, reservation_open
from runs.models import Message, Run
from tests.budgets import _workers

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
CTX = mp.get_context("spawn")
AMOUNT = Decimal("0.0075")


def _db_name() -> str:
    return connection.settings_dict["NAME"]


def _counter_matches_ledger(tenant) -> None:
    for c in CapCounter.unscoped.filter(tenant=tenant):
        key = {"task": "run_id", "user_day": "user_id", "user_month": "user_id", "tenant_month": "tenant_id"}[c.scope]
        entries = SpendEntry.unscoped.filter(tenant=tenant, **{key: c.subject_id})
        opens = Reservation.unscoped.filter(tenant=tenant, status="open", **{key: c.subject_id})
        if c.scope == "user_day":
            entries, opens = entries.filter(day=c.window_start), opens.filter(day=c.window_start)
        elif c.scope in ("user_month", "tenant_month"):
            entries, opens = entries.filter(day__gte=c.window_start), opens.filter(day__gte=c.window_start)
        assert c.spent == (entries.aggregate(s=Sum("cost"))["s"] or 0), c
        assert c.reserved == (opens.aggregate(s=Sum("amount"))["s"] or 0), c


@pytest.mark.parametrize("portable", [False, True], ids=["db_functions", "portable"])
def test_eight_processes_never_pass_the_tenant_cap(tenant, make_run, members, portable, monkeypatch):
    if portable:  # the children read it at import; the SQLite demo path must be race-free too
        monkeypatch.setenv("BUDGETS_PORTABLE_PATH", "1")
    allowed = 37
    TenantCaps.objects.create(tenant=tenant, tenant_month_cost_cap=AMOUNT * allowed + Decimal("0.0074"))
    workers, rounds = 8, 12
    runs = [make_run(submitted_by=members[r]) for r in ("admin", "operator", "viewer", "finance") for _ in range(2)]
    barrier, out = CTX.Barrier(workers), CTX.Queue()
    procs = [
        CTX.Process(target=_workers.race_worker, args=(_db_name(), [runs[i].pk], rounds, barrier, out))
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    ok = sum(r[0] for r in results)
    assert ok == allowed, results
    assert sum(r[1] for r in results) == workers * rounds - allowed
    counter = CapCounter.unscoped.get(tenant=tenant, scope="tenant_month")
    assert counter.spent + counter.reserved == AMOUNT * allowed <= counter.cap
    settled = SpendEntry.unscoped.filter(tenant=tenant).aggregate(s=Sum("cost"))["s"]
    held = Reservation.unscoped.filter(tenant=tenant, status="open").aggregate(s=Sum("amount"))["s"]
    assert settled + held == AMOUNT * allowed
    _counter_matches_ledger(tenant)
    # Run totals follow the ledger too.
    assert sum(Run.objects.filter(pk__in=[r.pk for r in runs]).values_list("cost", flat=True)) == settled


@pytest.mark.parametrize("how", ["exit", "sigkill"])
def test_worker_killed_between_reserve_and_settle_is_charged_its_worst_case(tenant, make_run, how):
    run = make_run()
    p = CTX.Process(target=_workers.crash_worker, args=(_db_name(), run.pk, how))
    p.start()
    p.join(timeout=60)
    assert p.exitcode in (3, -9)
    res = Reservation.unscoped.get(run_id=run.pk)
    assert res.status == "open"
    counter = CapCounter.unscoped.get(tenant=tenant, scope="tenant_month")
    assert counter.reserved == res.amount
    # The run is "running" without a live lease: its worker is gone.
    # The API may have answered (and billed) before the worker died: the worst case is charged,
    # never zero, as an entry flagged for finance.
    out = reconcile_reservations(stale_after_s=600)
    assert out["unknown_outcome"] == 1
    res.refresh_from_db()
    assert res.status == "settled"
    entry = SpendEntry.unscoped.get(reservation_id=res.pk)
    assert entry.unknown_outcome and entry.cost == res.amount > 0
    counter.refresh_from_db()
    assert counter.reserved == 0 and counter.spent == res.amount
    run.refresh_from_db()
    assert run.cost == res.amount
    _counter_matches_ledger(tenant)
    assert reconcile_reservations()["unknown_outcome"] == 0


def test_reconciler_settles_a_call_whose_reply_reached_the_log(tenant, make_run):
    run = make_run()
    p = CTX.Process(target=_workers.crash_worker, args=(_db_name(), run.pk, "exit"))
    p.start()
    p.join(timeout=60)
    res = Reservation.unscoped.get(run_id=run.pk)
    Message.objects.create(tenant=tenant, run=run, seq=1, role="assistant", content=[{"type": "text", "text": "hi"}],
                           model="claude-sonnet-4-5-20250929", response_id="msg_01X", usage=_workers.FULL_USAGE)
    assert reconcile_reservations()["settled"] == 1
    entry = SpendEntry.unscoped.get(reservation_id=res.pk)
    assert entry.cost == AMOUNT and entry.response_id == "msg_01X"
    run.refresh_from_db()
    assert run.cost == AMOUNT
    _counter_matches_ledger(tenant)
    # Running it again changes nothing.
    assert reconcile_reservations() == {"checked": 0, "settled": 0, "unknown_outcome": 0}
    assert not entry.unknown_outcome


def test_live_leased_reservations_are_left_alone(tenant, make_run):
    from datetime import timedelta

    from django.utils import timezone

    run = make_run(lease_owner="w1", lease_expires_at=timezone.now() + timedelta(minutes=5))
    reservation_open(run=run, model="claude-sonnet-4-5", max_tokens=100, input_tokens_bound=1000)
    assert reconcile_reservations()["checked"] == 1
    assert Reservation.unscoped.get(run_id=run.pk).status == "open"
    assert reconcile_reservations(stale_after_s=0)["unknown_outcome"] == 1


def test_rollups_equal_the_ledger_after_concurrent_writes(tenant, other_tenant, make_run, agent, members):
    from runs.models import Agent
    from tests.factories import MembershipFactory, UserFactory

    other_agent = Agent.objects.create(tenant=other_tenant, name="b", system_prompt="x")
    other_user = MembershipFactory(tenant=other_tenant, user=UserFactory(username="g-op")).user
    runs = [make_run(submitted_by=members[r], prompt_version_id=pv) for r in ("admin", "operator") for pv in (None, 7)]
    runs += [Run.objects.create(tenant=other_tenant, agent=other_agent, submitted_by=other_user, input="x", status="running")]
    out = CTX.Queue()
    procs = [CTX.Process(target=_workers.spend_worker, args=(_db_name(), [r.pk for r in runs], 40, out)) for _ in range(6)]
    for p in procs:
        p.start()
    for _ in procs:
        out.get(timeout=120)
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    ledger = {
        (r["tenant_id"], r["day"], r["model"], r["agent_id"] or 0, r["user_id"] or 0, r["prompt_version_id"] or 0): (r["c"], r["n"], r["i"], r["o"], r["cr"])
        for r in SpendEntry.unscoped.values("tenant_id", "day", "model", "agent_id", "user_id", "prompt_version_id")
        .annotate(c=Sum("cost"), n=Sum(1), i=Sum("input_tokens"), o=Sum("output_tokens"), cr=Sum("cache_read_tokens"))
    }
    rollups = {
        (r.tenant_id, r.day, r.model, r.agent_id, r.user_id, r.prompt_version_id): (r.cost, r.calls, r.input_tokens, r.output_tokens, r.cache_read_tokens)
        for r in DailyRollup.objects.all()
    }
    assert ledger == rollups
    assert len({k[0] for k in rollups}) == 2
    _counter_matches_ledger(tenant)
    _counter_matches_ledger(other_tenant)
