"""``manage.py bench reservations`` and ``manage.py bench spend-page``.

reservations: N processes (each its own PostgreSQL connection) reserve + settle as fast as they
can for ``seconds``: against one hot cap with escrow (same tenant, same user, ``hot_cap_escrow``:
slices checked out from the shared counters, budgets.escrow), against the same hot cap per call
(every call locks the same user_day, user_month and tenant_month rows), and spread (a tenant per
process). Beside them, in the same run, the same N processes doing a plain single-row
``UPDATE … SET x = x + 1`` loop in autocommit on one row — the ceiling any design with a row per
cap can reach; escrow ÷ that is the figure. Two arms split an escrow call in its two parts:

* **ledger only**: per call exactly what it must write with no cap at all — budgets_settle_local's
  run totals, ledger row and rollup, without its lease and task counter writes, one durable
  autocommit statement (bench_children.ledger_function_sql);
* **cap admissions**: the cap's own work per call — ``reservation_open`` on the escrow path and the
  settle's in-memory return to the slice, with the slice checkouts, top-ups and returns it brings
  (real statements on the hot counters) — and no ledger write.

Each arm reports the client's and the server's CPU per operation beside its rate: on a machine
where the processes outnumber the cores, CPU per operation is what bounds the rate. After the
rounds every slice is returned, and the counters must equal the ledger to the last decimal (the
ledger-only arm: its rollups equal its ledger and it touched no counter), or the bench fails.

spend-page: fills a bench tenant with ``rows`` ledger rows (and their rollups) once, then times the
finance page's server side (the view, through the test client) ``repeat`` times.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import queue
import random
import statistics
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Count, Sum
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from agentops.bench import benchmark, vacuum
from budgets import bench_children, escrow
from budgets.models import CapCounter, DailyRollup, EscrowLease, Reservation, SpendEntry, TenantCaps
from budgets.pricing import cost_of_tokens, price_for, tokens_from_usage, worst_case_cost
from budgets.services import _ROLLUP_SQL
from budgets.subjects import ChargedRun, SeedRun, subjects
from tenants.models import Membership, Tenant, Tier

BENCH_SLUG = "bench-budgets"


@dataclass(frozen=True)
class Rate:
    """One arm's operations per second over the window, and CPU per operation (µs) of the client
    processes and of their PostgreSQL backends (``nan``: the server is on another machine)."""

    per_s: float
    client_us: float
    server_us: float


def _spawn(target: Any, args_per_proc: list[tuple[Any, ...]], seconds: float) -> Rate:
    """Start one process per args, release them together (a barrier, once each is connected) and
    return their operations per second over the same ``seconds`` window."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start = ctx.Barrier(len(args_per_proc) + 1)  # the children and this process
    db_name = connection.settings_dict["NAME"]
    procs = [ctx.Process(target=target, args=(*a, db_name, seconds, start, out)) for a in args_per_proc]
    for p in procs:
        p.start()
    try:
        ready_by = time.monotonic() + bench_children.START_TIMEOUT_S
        while start.n_waiting < len(procs):  # every child connected and waiting; fail fast if one died first
            if any(p.exitcode is not None for p in procs) or time.monotonic() > ready_by:
                raise RuntimeError(f"a bench process died or hung before the start: exit codes {[p.exitcode for p in procs]}")
            time.sleep(0.02)
        start.wait(timeout=30)
        reports: list[tuple[int, float, float]] = []
        deadline = time.monotonic() + seconds + 60
        while len(reports) < len(procs):
            try:
                reports.append(out.get(timeout=1))
            except queue.Empty:
                if time.monotonic() > deadline or any(p.exitcode not in (None, 0) for p in procs):
                    raise RuntimeError(f"a bench process died or hung: exit codes {[p.exitcode for p in procs]}") from None
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    counts = [r[0] for r in reports]
    if any(n <= 0 for n in counts):
        raise RuntimeError(f"a process completed nothing in {seconds}s: {counts}")
    ops = sum(counts)
    return Rate(ops / seconds, sum(r[1] for r in reports) / ops * 1e6, sum(r[2] for r in reports) / ops * 1e6)


def _bench_tenant(slug: str, *, escrow: bool = False) -> Any:
    tier, _ = Tier.objects.get_or_create(slug="bench", defaults={"name": "Bench", "task_cost_cap": Decimal("1000000"),
                                                                 "user_day_cost_cap": Decimal("1000000"), "user_month_cost_cap": Decimal("1000000"),
                                                                 "tenant_month_cost_cap": Decimal("1000000")})
    tenant, _ = Tenant.objects.get_or_create(slug=slug, defaults={"name": slug, "tier": tier})
    TenantCaps.objects.update_or_create(tenant=tenant, defaults={"hot_cap_escrow": escrow})
    user, _ = get_user_model().objects.get_or_create(username=f"{slug}-user")
    Membership.objects.get_or_create(tenant=tenant, user=user, defaults={"role": "admin"})
    [agent] = subjects().agents_ensure(tenant_id=tenant.pk, names=["bench"], system_prompt="bench", model="claude-haiku-4-5")
    SpendEntry.unscoped.filter(tenant=tenant).delete()
    Reservation.unscoped.filter(tenant=tenant).delete()
    CapCounter.unscoped.filter(tenant=tenant).delete()
    EscrowLease.unscoped.filter(tenant=tenant).delete()
    DailyRollup.objects.filter(tenant=tenant).delete()
    subjects().runs_delete(tenant_id=tenant.pk)
    tenant.bench_user, tenant.bench_agent = user, agent  # type: ignore[attr-defined]
    return tenant


def _runs(tenant: Any, n: int) -> list[ChargedRun]:
    agent_id, user_id = tenant.bench_agent.pk, tenant.bench_user.pk
    seed = [SeedRun(agent_id=agent_id, input="bench", status="running", metadata={"bench": True}, submitted_by_id=user_id)] * n
    ids = subjects().runs_seed(tenant_id=tenant.pk, runs=seed)
    return [ChargedRun(pk=pk, tenant_id=tenant.pk, agent_id=agent_id, submitted_by_id=user_id) for pk in ids]


@benchmark("reservations", help="reserve+settle per second on one hot cap with escrow and per call, spread caps, a ledger-only "
           "baseline, the cap's own admissions, and a plain single-row UPDATE", processes=8, seconds=5, rounds=2)
def bench_reservations(*, stdout: Any, processes: int, seconds: int, rounds: int) -> dict[str, Any]:
    connection.close()  # children open their own connections
    hot = _bench_tenant(BENCH_SLUG)
    esc = _bench_tenant(f"{BENCH_SLUG}-escrow", escrow=True)
    cap = _bench_tenant(f"{BENCH_SLUG}-cap", escrow=True)
    led = _bench_tenant(f"{BENCH_SLUG}-ledger")
    spread = [_bench_tenant(f"{BENCH_SLUG}-{i}") for i in range(processes)]
    row = CapCounter.objects.create(tenant=hot, scope="bench", subject_id=0, window_start="2000-01-01")
    # Each run starts from the same state even where the server runs without autovacuum: every call
    # updates its run's row (not a HOT update: runs_run indexes cost), so dead versions pile up.
    vacuum("runs_run", CapCounter._meta.db_table, EscrowLease._meta.db_table, DailyRollup._meta.db_table, SpendEntry._meta.db_table)
    cases: dict[str, tuple[Any, list[tuple[Any, ...]]]] = {
        "escrow": (bench_children.reserve_loop, [(_runs(esc, 1),) for _ in range(processes)]),  # a work horse drives one run
        "ledger_only": (bench_children.ledger_loop, [(_runs(led, 1), 1 + i % 16) for i in range(processes)]),
        "cap_admissions": (bench_children.admission_loop, [(_runs(cap, 1),) for _ in range(processes)]),
        "per_call": (bench_children.reserve_loop, [(_runs(hot, 4),) for _ in range(processes)]),
        "spread": (bench_children.reserve_loop, [(_runs(t, 4),) for t in spread]),
        "update": (bench_children.update_loop, [(row.pk,)] * processes),
    }
    connection.close()
    # The rounds interleave the cases, so a load that changes during the run hits all of them alike.
    rates: dict[str, list[Rate]] = {k: [] for k in cases}
    for r in range(rounds):
        for name, (target, args) in cases.items():
            stdout.write(f"round {r + 1}/{rounds}, {name}: {processes} processes x {seconds}s …")
            got = _spawn(target, args, seconds)
            rates[name].append(got)
            stdout.write(f"  {got.per_s:.0f}/s, CPU per op: client {got.client_us:.0f} µs + server {got.server_us:.0f} µs"
                         f" (load {os.getloadavg()[0]:.2f})")
    leases = _escrow_books_balance(esc)
    stdout.write(f"escrow: {leases} slice checkouts, all returned; counters equal the ledger")
    cap_leases = _escrow_books_balance(cap)
    cap_checkouts = _slice_checkouts(cap)
    stdout.write(f"cap admissions: {cap_leases} leases, {cap_checkouts} slice checkouts and top-ups, all returned")
    ledger_rows = _ledger_books_balance(led)
    stdout.write(f"ledger only: {ledger_rows} ledger rows, rollups equal the ledger, no counter touched")
    single_update = _spawn(bench_children.update_loop, [(row.pk,)], seconds)
    CapCounter.unscoped.filter(pk=row.pk).delete()
    med = {k: statistics.median(x.per_s for x in v) for k, v in rates.items()}
    cpu = {k: (statistics.median(x.client_us for x in v), statistics.median(x.server_us for x in v)) for k, v in rates.items()}
    # Each per-call reserve+settle is two transactions on the hot rows; with escrow neither is.
    return {
        "hot_cap_escrow_reserve_settle_per_s": round(med["escrow"], 1),
        "hot_cap_reserve_settle_per_s": round(med["per_call"], 1),
        "spread_caps_reserve_settle_per_s": round(med["spread"], 1),
        "ledger_only_settle_per_s": round(med["ledger_only"], 1),
        "cap_admissions_per_s": round(med["cap_admissions"], 1),
        "plain_update_per_s": round(med["update"], 1),
        "plain_update_single_process_per_s": round(single_update.per_s, 1),
        "rounds_per_s": {k: [round(x.per_s) for x in v] for k, v in rates.items()},
        "cpu_us_per_op_client_server": {k: [round(c), None if math.isnan(s) else round(s)] for k, (c, s) in cpu.items()},
        "escrow_slice_checkouts": leases,
        "cap_admissions_slice_checkouts": cap_checkouts,
        "ratio_escrow_to_plain_update": round(med["escrow"] / med["update"], 3),
        "ratio_escrow_to_per_call_hot_cap": round(med["escrow"] / med["per_call"], 3),
        "ratio_escrow_to_ledger_only": round(med["escrow"] / med["ledger_only"], 3),
        "ratio_ledger_only_to_plain_update": round(med["ledger_only"] / med["update"], 3),
        "ratio_cap_admissions_to_plain_update": round(med["cap_admissions"] / med["update"], 3),
        "ratio_hot_transactions_to_plain_update": round(2 * med["per_call"] / med["update"], 3),
    }


def _escrow_books_balance(tenant: Any) -> int:
    """After the escrow rounds: every lease closed, nothing reserved, each counter's spent equal to the ledger."""
    leases = EscrowLease.unscoped.filter(tenant=tenant)
    if leases.filter(status="open").exists() or not leases.exists():
        raise RuntimeError("escrow bench: a slice was never checked out or never returned")
    ledger = SpendEntry.unscoped.filter(tenant=tenant).aggregate(s=Sum("cost"))["s"] or Decimal(0)
    for c in CapCounter.unscoped.filter(tenant=tenant).exclude(scope="task"):
        if c.reserved != 0 or c.spent != ledger:
            raise RuntimeError(f"escrow bench: counter {c} spent {c.spent} reserved {c.reserved}, ledger {ledger}")
    return int(leases.count())


def _slice_checkouts(tenant: Any) -> int:
    """Checkouts and top-ups of the cap-admissions tenant: every one took a full slice (its caps are far away)."""
    price = price_for(bench_children.MODEL)
    amount = worst_case_cost(price, input_tokens_bound=bench_children.INPUT_BOUND, max_tokens=bench_children.MAX_TOKENS)
    total = EscrowLease.unscoped.filter(tenant=tenant).aggregate(s=Sum("amount"))["s"] or Decimal(0)
    return int(total / min(escrow.MAX_SLICE, amount * escrow.CALLS_PER_SLICE))


def _ledger_books_balance(tenant: Any) -> int:
    """After the ledger-only rounds: its rollups sum to its ledger, and it wrote no counter."""
    ledger = SpendEntry.unscoped.filter(tenant=tenant).aggregate(n=Count("id"), s=Sum("cost"))
    rolled = DailyRollup.objects.filter(tenant=tenant).aggregate(n=Sum("calls"), s=Sum("cost"))
    if not ledger["n"] or (ledger["n"], ledger["s"]) != (rolled["n"], rolled["s"]):
        raise RuntimeError(f"ledger-only bench: ledger {ledger}, rollups {rolled}")
    if CapCounter.unscoped.filter(tenant=tenant).exists():
        raise RuntimeError("ledger-only bench: a counter was written")
    return int(ledger["n"])


def fill_ledger(*, tenant: Any, rows: int, days: int = 90, runs: int = 2000, is_demo: bool = False, batch: int = 20_000, seed: int = 7) -> int:
    """Bulk-insert ``rows`` ledger entries over ``days`` with their exact rollups (bench and demo)."""
    rng = random.Random(seed)
    agents = subjects().agents(tenant_id=tenant.pk) or subjects().agents_ensure(tenant_id=tenant.pk, names=["assistant"], system_prompt="You help.")
    users: list[int | None] = [m.user_id for m in Membership.objects.filter(tenant=tenant)] or [None]
    models = ["claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-5"]
    prices = {m: price_for(m) for m in models}
    today = timezone.now().date()
    run_ids: list[int] = []
    if runs:
        now = timezone.now()
        seeds = [SeedRun(agent_id=rng.choice(agents).pk, input="(demo history)" if is_demo else "(bench)", status="succeeded",
                        metadata={"budgets_demo": True} if is_demo else {"bench": True}, created_at=now - timedelta(days=rng.randrange(days)))
                for _ in range(runs)]
        run_ids = subjects().runs_seed(tenant_id=tenant.pk, runs=seeds)
    made = 0
    run_tot: dict[int, list[Any]] = {}
    roll: dict[tuple[Any, ...], list[Any]] = {}
    # A ledger is appended as spend happens: rows go in oldest day first, so ids rise with time and a read in
    # (tenant, day, id) order walks the table front to back, as it does a real ledger (not a random heap).
    ages = sorted((rng.randrange(days) for _ in range(rows)), reverse=True)
    while made < rows:
        chunk = []
        for i in range(min(batch, rows - made)):
            d = today - timedelta(days=ages[made + i])
            # Weekday traffic is heavier; the newer the day the more traffic (growth).
            model = rng.choices(models, weights=[6, 3, 1])[0]
            usage = {"input_tokens": rng.randint(200, 4000), "output_tokens": rng.randint(50, 900),
                     "cache_read_input_tokens": rng.choice([0, 0, 1500, 6000]),
                     "cache_creation_input_tokens": rng.choice([0, 0, 0, 2000])}
            tok = tokens_from_usage(usage)
            cost = cost_of_tokens(prices[model], tok)
            agent = rng.choice(agents)
            user = rng.choice(users)
            pv = rng.choice([None, 1, 2])
            run_id = rng.choice(run_ids) if run_ids else None
            chunk.append(SpendEntry(
                tenant=tenant, run_id=run_id, user_id=user, agent_id=agent.pk, prompt_version_id=pv, model=model,
                input_tokens=tok.input, output_tokens=tok.output, cache_write_5m_tokens=tok.cache_write_5m,
                cache_write_1h_tokens=tok.cache_write_1h, cache_read_tokens=tok.cache_read, cost=cost, day=d,
                at=timezone.make_aware(datetime(d.year, d.month, d.day, rng.randrange(24), rng.randrange(60))), is_demo=is_demo,
            ))
            if run_id:
                tot = run_tot.setdefault(run_id, [Decimal(0), 0, 0])
                tot[0] += cost
                tot[1] += tok.prompt_total
                tot[2] += tok.output
            key = (d, model, agent.pk, user or 0, pv or 0)
            acc = roll.setdefault(key, [0, Decimal(0), 0, 0, 0, 0, 0])
            acc[0] += 1
            acc[1] += cost
            acc[2] += tok.input
            acc[3] += tok.output
            acc[4] += tok.cache_write_5m
            acc[5] += tok.cache_write_1h
            acc[6] += tok.cache_read
        with transaction.atomic():
            SpendEntry.objects.bulk_create(chunk, batch_size=5000)
        made += len(chunk)
    with transaction.atomic(), connection.cursor() as cur:
        for (d, model, agent_id, user_id, pv), acc in roll.items():
            cur.execute(_ROLLUP_SQL, [tenant.pk, d, model, agent_id, user_id, pv, is_demo, acc[0], acc[1], *acc[2:]])
        for run_id, (c, tin, tout) in run_tot.items():
            subjects().run_charge(run_id=run_id, cost=c, input_tokens=tin, output_tokens=tout)
    return made


@benchmark("spend-page", help="server time of the finance page over a large ledger", rows=1_000_000, repeat=20)
def bench_spend_page(*, stdout: Any, rows: int, repeat: int) -> dict[str, Any]:
    tenant = _page_tenant()
    have = SpendEntry.unscoped.filter(tenant=tenant).count()
    if have != rows:
        stdout.write(f"filling the ledger with {rows} rows (once) …")
        _page_tenant(reset=True)
        t0 = time.perf_counter()
        fill_ledger(tenant=tenant, rows=rows, runs=max(1000, rows // 20))
        stdout.write(f"  {time.perf_counter() - t0:.0f}s")

        with connection.cursor() as cur:
            cur.execute("ANALYZE")
    user = Membership.objects.filter(tenant=tenant, role="finance").first().user  # type: ignore[union-attr]
    client = Client()
    client.force_login(user)
    url = reverse("budgets:spend", kwargs={"slug": tenant.slug})
    timings = []
    for i in range(repeat + 2):
        t0 = time.perf_counter()
        resp = client.get(url, {"by": ["model", "agent", "user", "prompt_version"][i % 4]})
        ms = (time.perf_counter() - t0) * 1000
        assert resp.status_code == 200, resp.status_code
        if i >= 2:  # the first requests warm imports and caches
            timings.append(ms)
    timings.sort()
    return {
        "ledger_rows": SpendEntry.unscoped.filter(tenant=tenant).count(),
        "page_ms_median": round(statistics.median(timings), 1),
        "page_ms_p95": round(timings[int(len(timings) * 0.95) - 1], 1),
        "page_ms_max": round(timings[-1], 1),
    }


def _page_tenant(reset: bool = False) -> Any:
    tier, _ = Tier.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    tenant, _ = Tenant.objects.get_or_create(slug=f"{BENCH_SLUG}-page", defaults={"name": "Bench spend page", "tier": tier})
    User = get_user_model()
    for role in ("finance", "admin", "operator"):
        u, _ = User.objects.get_or_create(username=f"bench-page-{role}")
        Membership.objects.get_or_create(tenant=tenant, user=u, defaults={"role": role})
    subjects().agents_ensure(tenant_id=tenant.pk, names=["triage", "research", "billing", "support"], system_prompt="bench")
    if reset:
        SpendEntry.unscoped.filter(tenant=tenant).delete()
        DailyRollup.objects.filter(tenant=tenant).delete()
        CapCounter.unscoped.filter(tenant=tenant).delete()
        subjects().runs_delete(tenant_id=tenant.pk)
    return tenant
