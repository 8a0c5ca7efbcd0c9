"""Escrow for hot caps (budgets.escrow): slices never let settled + reserved pass a cap, under many
processes, crashes (SIGKILL of a process holding a slice) and reclaim; near the edge calls fall
back to per-call reservations and the call that would overrun is refused."""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import time
from datetime import timedelta
from decimal import Decimal

import psycopg
import pytest
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from budgets import escrow
from budgets.models import CapCounter, EscrowLease, Reservation, SpendEntry, TenantCaps
from budgets.selectors import cap_utilisation
from budgets.services import (
    CostCapExceeded,
    reconcile_reservations,
    reservation_open,
    reservation_release,
    reservation_settle,
)
from runs.models import Run
from tests.budgets import _workers

CTX = mp.get_context("spawn")
AMOUNT = Decimal(
    "0.0075"
)  # worst case of (1000 in, 100 out) on claude-sonnet-4-5, and FULL_USAGE's exact cost


def _open(run, **kw):  # type: ignore[no-untyped-def]
    return reservation_open(
        run=run, model="claude-sonnet-4-5", max_tokens=kw.pop("max_tokens", 100), input_tokens_bound=1000
    )


def _hot(tenant, cap: str) -> None:  # type: ignore[no-untyped-def]
    TenantCaps.objects.update_or_create(
        tenant=tenant, defaults={"hot_cap_escrow": True, "tenant_month_cost_cap": Decimal(cap)}
    )
    escrow.note_flag(tenant.pk, True)  # as the first reserve would have told this process


def _counter(tenant, scope: str = "tenant_month") -> CapCounter:  # type: ignore[no-untyped-def]
    return CapCounter.unscoped.get(tenant=tenant, scope=scope)


@pytest.fixture(autouse=True)
def _fresh_holder():  # type: ignore[no-untyped-def]
    escrow._HOLDER = None
    yield
    escrow._HOLDER = None


@pytest.mark.django_db(transaction=True)  # settles credit the slice on commit
def test_a_slice_is_reserved_on_the_counters_and_calls_reserve_against_it_in_memory(
    tenant, make_run, django_assert_num_queries
):
    _hot(tenant, "10")
    run = make_run()
    res = _open(run)
    lease = EscrowLease.unscoped.get(pk=res.escrow_lease_id)
    # min(200 worst cases, $5, headroom / (4 x 1 holder)) = min($1.50, $5, $2.50)
    assert lease.amount == AMOUNT * 200 and lease.user_id == run.submitted_by_id
    assert (lease.max_call, lease.run_id, lease.model) == (AMOUNT, run.pk, "claude-sonnet-4-5")
    for scope in ("user_day", "user_month", "tenant_month"):
        assert _counter(tenant, scope).reserved == lease.amount and _counter(tenant, scope).spent == 0
    assert res.pk is None and not Reservation.unscoped.exists()  # reserved in memory: no row
    reservation_settle(reservation=res, usage=_workers.FULL_USAGE, model="claude-sonnet-4-5-20250929")
    assert reservation_settle(reservation=res, usage=_workers.FULL_USAGE, model="x").pk == res.escrow_entry.pk
    with django_assert_num_queries(0):  # the next call reserves without a statement
        second = _open(run)
    assert second.escrow_lease_id == lease.pk and EscrowLease.unscoped.count() == 1  # no second checkout
    with django_assert_num_queries(0):
        reservation_release(reservation=second)
    # The cap page shows what the slice's calls settled as spent, the rest of the slice as reserved.
    row = next(r for r in cap_utilisation(tenant=tenant) if r["scope"] == "tenant_month")
    assert row["spent"] == AMOUNT and row["reserved"] == lease.amount - AMOUNT
    assert escrow.return_all() == 1
    lease.refresh_from_db()
    assert lease.status == "closed" and lease.spent == AMOUNT and lease.reclaim_entry_id is None
    for scope in ("user_day", "user_month", "tenant_month"):
        assert (_counter(tenant, scope).spent, _counter(tenant, scope).reserved) == (AMOUNT, 0)
    assert _counter(tenant, "task").spent == AMOUNT and _counter(tenant, "task").reserved == 0
    assert Run.objects.get(pk=run.pk).cost == AMOUNT == SpendEntry.unscoped.get().cost


@pytest.mark.django_db(transaction=True)  # settles credit the slice on commit
def test_a_second_call_in_flight_on_a_lease_reserves_per_call(tenant, make_run):
    _hot(tenant, "10")
    run = make_run()
    first, second = _open(run), _open(run)
    assert first.escrow_lease_id and first.pk is None
    assert (
        second.escrow_lease_id is None and second.pk is not None
    )  # a durable row: one unrecorded call per lease at most
    reservation_settle(reservation=second, usage=_workers.FULL_USAGE, model="claude-sonnet-4-5")
    reservation_settle(reservation=first, usage=_workers.FULL_USAGE, model="claude-sonnet-4-5")
    escrow.return_all()
    assert _counter(tenant).spent == 2 * AMOUNT and _counter(tenant).reserved == 0
    assert _counter(tenant, "task").spent == 2 * AMOUNT and _counter(tenant, "task").reserved == 0


@pytest.mark.django_db(transaction=True)  # settles credit the slice on commit
def test_the_run_task_cap_holds_under_a_lease(tenant, make_run):
    _hot(tenant, "10")
    agent_run = make_run()
    TenantCaps.objects.filter(tenant=tenant).update(task_cost_cap=AMOUNT * 3)
    for _ in range(3):
        reservation_settle(reservation=_open(agent_run), usage=_workers.FULL_USAGE, model="claude-sonnet-4-5")
    with pytest.raises(CostCapExceeded) as exc:
        _open(agent_run)
    assert exc.value.scope == "task"
    escrow.return_all()
    assert _counter(tenant, "task").spent == AMOUNT * 3 == _counter(tenant).spent


@pytest.mark.django_db(transaction=True)
def test_a_settle_rolled_back_with_the_harness_step_is_settled_again(tenant, make_run):
    _hot(tenant, "10")
    run = make_run()
    res = _open(run)
    with (
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):  # the step's transaction (e.g. the run lease lost)
        reservation_settle(reservation=res, usage=_workers.FULL_USAGE, model="claude-sonnet-4-5")
        raise RuntimeError
    assert not SpendEntry.unscoped.exists()
    assert (
        _open(run).escrow_lease_id is None
    )  # the call is still open on the lease: the next reserves per call
    entry = reservation_settle(reservation=res, usage=_workers.FULL_USAGE, model="claude-sonnet-4-5")
    assert SpendEntry.unscoped.get().pk == entry.pk and entry.cost == AMOUNT
    escrow.return_all()
    assert _counter(tenant).spent == AMOUNT and EscrowLease.unscoped.get().spent == AMOUNT


@pytest.mark.django_db(transaction=True)  # settles credit the slice on commit
def test_near_the_edge_calls_reserve_per_call_and_the_overrunning_call_is_refused(tenant, make_run):
    # $0.09 is 12 worst cases; a slice would be $0.09 / 4 = 3 calls' worth, under the edge of 4.
    _hot(tenant, str(AMOUNT * 12))
    run = make_run()
    held = [_open(run) for _ in range(12)]
    assert all(r.escrow_lease_id is None for r in held) and not EscrowLease.unscoped.exists()
    with pytest.raises(CostCapExceeded) as exc:
        _open(run)
    assert exc.value.scope == "tenant_month"
    c = _counter(tenant)
    assert c.spent + c.reserved == AMOUNT * 12 == c.cap


@pytest.mark.django_db(transaction=True)  # settles credit the slice on commit
def test_slices_shrink_with_the_headroom_and_a_drained_slice_tops_up(tenant, make_run):
    _hot(tenant, "0.60")
    run = make_run()
    first = _open(run)
    # $0.60 / 4 = $0.15 (20 calls), under 200 worst cases.
    assert EscrowLease.unscoped.get(pk=first.escrow_lease_id).amount == Decimal("0.15")
    reservation_settle(reservation=first, usage=_workers.FULL_USAGE, model="claude-sonnet-4-5")
    for _ in range(19):
        res = _open(run)
        assert res.escrow_lease_id == first.escrow_lease_id
        reservation_settle(reservation=res, usage=_workers.FULL_USAGE, model="claude-sonnet-4-5")
    # The 21st tops the slice up by (0.60 - 0.15) / (4 x 1) = 0.1125.
    extra = _open(run)
    assert extra.escrow_lease_id == first.escrow_lease_id
    assert EscrowLease.unscoped.get(pk=first.escrow_lease_id).amount == Decimal("0.2625")
    c = _counter(tenant)
    assert c.reserved == Decimal("0.2625") and c.spent == 0


@pytest.mark.django_db(transaction=True)  # settles credit the slice on commit
def test_a_reclaim_charges_the_call_in_flight_at_its_worst_case_and_the_stalled_holder_settles_into_it(
    tenant, make_run
):
    _hot(tenant, "10")
    run = make_run()
    reservation_settle(reservation=_open(run), usage=_workers.FULL_USAGE, model="claude-sonnet-4-5")
    big = _open(run, max_tokens=400)  # worst case $0.012: the lease now records it as max_call
    lease = EscrowLease.unscoped.get(pk=big.escrow_lease_id)
    assert lease.max_call == big.amount == Decimal("0.012")
    later = timezone.now() + timedelta(seconds=escrow.lease_seconds() + 1)
    assert reconcile_reservations(stale_after_s=0)["checked"] == 0  # a live lease is left alone
    escrow_result = escrow.close(lease.pk, now=later, expired_only=True)
    assert escrow_result == {
        "spent": AMOUNT + big.amount,
        "freed": lease.amount - AMOUNT - big.amount,
        "charged": big.amount,
    }
    lease.refresh_from_db()
    charge = SpendEntry.unscoped.get(pk=lease.reclaim_entry_id)
    assert (
        charge.unknown_outcome
        and charge.cost == big.amount
        and charge.run_id == run.pk
        and charge.reservation_id is None
    )
    for scope in ("user_day", "user_month", "tenant_month", "task"):
        assert (_counter(tenant, scope).spent, _counter(tenant, scope).reserved) == (AMOUNT + big.amount, 0)
    assert Run.objects.get(pk=run.pk).cost == AMOUNT + big.amount
    # The stalled holder wakes up and settles its call: the reclaim's charge stands for it, once.
    entry = reservation_settle(reservation=big, usage=_workers.FULL_USAGE, model="claude-sonnet-4-5")
    assert entry.pk == charge.pk and EscrowLease.unscoped.get(pk=lease.pk).late_settled
    assert _counter(tenant).spent == AMOUNT + big.amount and SpendEntry.unscoped.count() == 2
    nxt = _open(run)  # the holder dropped the reclaimed lease: a new one
    assert nxt.escrow_lease_id not in (None, lease.pk)


@pytest.mark.django_db(transaction=True)  # settles credit the slice on commit
def test_a_reclaim_between_calls_overcharges_by_at_most_one_worst_case_within_the_slice(tenant, make_run):
    _hot(tenant, str(AMOUNT * 40))  # a slice of 10 worst cases
    run = make_run()
    for _ in range(9):
        reservation_settle(reservation=_open(run), usage=_workers.FULL_USAGE, model="claude-sonnet-4-5")
    lease = EscrowLease.unscoped.get()
    assert lease.amount == AMOUNT * 10
    later = timezone.now() + timedelta(seconds=escrow.lease_seconds() + 1)
    assert escrow.reclaim_expired(now=later) == 1  # nothing was in flight: the holder died between calls
    assert SpendEntry.unscoped.filter(unknown_outcome=True).get().cost == AMOUNT  # one worst case
    assert _counter(tenant).spent == AMOUNT * 10 and _counter(tenant).reserved == 0
    # With less than one worst case left in the slice, the charge is what is left.
    escrow._HOLDER = None  # a new holder (the old one died)
    escrow.note_flag(tenant.pk, True)
    reservation_settle(reservation=_open(run), usage=_workers.FULL_USAGE, model="claude-sonnet-4-5")
    lease2 = EscrowLease.unscoped.get(status="open")
    EscrowLease.unscoped.filter(pk=lease2.pk).update(max_call=lease2.amount)  # a call as large as the slice
    assert (
        escrow.close(lease2.pk, now=later + timedelta(seconds=120), expired_only=True)["charged"]
        == lease2.amount - AMOUNT
    )
    c = _counter(tenant)
    assert c.spent + c.reserved <= c.cap and c.reserved == 0


_BOOKS_SQL = """
SELECT c.spent + c.reserved, c.cap,
  (SELECT COALESCE(sum(cost), 0) FROM budgets_spendentry WHERE tenant_id = c.tenant_id)
  + (SELECT COALESCE(sum(amount), 0) FROM budgets_reservation
      WHERE tenant_id = c.tenant_id AND status = 'open' AND escrow_lease_id IS NULL)
  + (SELECT COALESCE(sum(amount - spent), 0) FROM budgets_escrowlease WHERE tenant_id = c.tenant_id AND status = 'open')
FROM budgets_capcounter c WHERE c.tenant_id = %s AND c.scope = 'tenant_month'
"""


def _books(dsn: str, tenant_id: int) -> dict[str, Decimal]:
    """One snapshot (one statement) of the tenant-month counter beside what should add up to it:
    the ledger (reclaim charges included) + open per-call reservations + the unspent part of
    every open slice (calls in flight in a holder's memory are part of it)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(_BOOKS_SQL, [tenant_id]).fetchone()
    return {} if row is None else {"counter": row[0], "cap": row[1], "books": row[2]}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_many_processes_with_crashes_and_reclaim_never_pass_the_hot_cap(
    tenant, make_run, members, monkeypatch
):
    monkeypatch.setenv(
        "BUDGETS_ESCROW_LEASE_S", "2"
    )  # the children read it at start-up; crashed slices come back fast
    cap = Decimal("1.50")
    _hot(tenant, str(cap))
    workers, seconds = 6, 8.0
    runs = [[make_run(submitted_by=members["operator"]).pk for _ in range(2)] for _ in range(workers)]
    dsn = f"postgresql://postgres@127.0.0.1:5432/{connection.settings_dict['NAME']}"
    barrier, out = CTX.Barrier(workers + 1), CTX.Queue()
    procs = [
        CTX.Process(
            target=_workers.escrow_worker,
            args=(connection.settings_dict["NAME"], runs[i], i, seconds, barrier, out),
        )
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    barrier.wait(timeout=180)
    rng = random.Random(14)
    kill_at = sorted(rng.uniform(1.0, seconds - 2) for _ in range(2))
    killed: list[mp.Process] = []
    started, samples = time.monotonic(), 0
    while any(p.is_alive() for p in procs) and time.monotonic() - started < seconds + 120:
        if kill_at and time.monotonic() - started > kill_at[0]:
            kill_at.pop(0)
            victim = next(p for p in procs if p.is_alive() and p not in killed)
            os.kill(victim.pid, signal.SIGKILL)  # it holds a slice (and maybe a call in flight)
            killed.append(victim)
        b = _books(dsn, tenant.pk)
        if b:
            assert b["counter"] <= b["cap"] == cap, b
            assert b["counter"] == b["books"], b  # slices included, to the last decimal
            samples += 1
        escrow.reclaim_expired()
        time.sleep(0.05)
    results = [out.get(timeout=60) for _ in range(workers - len(killed))]
    for p in procs:
        p.join(timeout=30)
    assert sorted(p.exitcode for p in killed) == [-9, -9]
    assert all(p.exitcode == 0 for p in procs if p not in killed)
    assert samples > 20 and sum(r[0] for r in results) > 50 and sum(r[2] for r in results) > 0, (
        samples,
        results,
    )
    assert sum(r[1] for r in results) > 0  # the cap was reached: calls were refused
    # The dead processes' slices: reclaimed once their leases expired; their calls in flight are
    # charged their worst case by the reservation reconciler.
    time.sleep(2.5)
    reconcile_reservations(stale_after_s=0)
    assert not EscrowLease.unscoped.filter(status="open").exists()
    assert not Reservation.unscoped.filter(tenant=tenant, status="open").exists()
    ledger = SpendEntry.unscoped.filter(tenant=tenant).aggregate(s=Sum("cost"))["s"]
    for scope in ("user_day", "user_month", "tenant_month"):
        c = _counter(tenant, scope)
        assert c.reserved == 0 and c.spent == ledger <= cap, (scope, c.spent, c.reserved, ledger)
    assert sum(Run.objects.filter(tenant=tenant).values_list("cost", flat=True)) == ledger
    final = _books(dsn, tenant.pk)
    assert final["counter"] == final["books"] == ledger


@pytest.mark.django_db(transaction=True)  # settles credit the slice on commit
def test_an_idle_slice_goes_back_and_a_new_database_session_drops_the_balances(tenant, make_run, monkeypatch):
    _hot(tenant, "10")
    run = make_run()
    now = [1000.0]
    monkeypatch.setattr(escrow, "clock", lambda: now[0])
    first = _open(run)
    reservation_release(reservation=first)
    now[0] += settings.BUDGETS_ESCROW_IDLE_S + 1
    second = _open(run)  # the idle lease is returned before a new one is checked out
    assert EscrowLease.unscoped.get(pk=first.escrow_lease_id).status == "closed"
    assert second.escrow_lease_id != first.escrow_lease_id
    # A new session may follow a PostgreSQL crash that lost relaxed settlements: the balances are
    # no longer trusted, so the lease is dropped (left for the reconciler), not used or closed.
    escrow.holder().backend_pid = -1
    third = _open(run)
    assert third.escrow_lease_id not in (None, second.escrow_lease_id)
    assert EscrowLease.unscoped.get(pk=second.escrow_lease_id).status == "open"
    c = _counter(tenant)
    leases = EscrowLease.unscoped.filter(status="open").aggregate(s=Sum("amount"))["s"]
    assert c.reserved == leases and c.spent == 0
