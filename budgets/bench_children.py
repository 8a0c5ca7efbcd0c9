"""The bodies of budgets' benchmark processes (``multiprocessing`` spawn children).

A spawned child imports this module before anything else, so it sets Django up first, here at the
top, and only then imports the models: the rest of ``budgets.bench`` can import them normally.

Each child reports ``(operations, client CPU seconds, server CPU seconds)`` over its timed window:
its own CPU (``getrusage``) and its PostgreSQL backend's (``/proc/<pid>/stat``; ``nan`` when the
server runs on another machine), so the bench can say where an operation's cost goes.
"""

from __future__ import annotations

import math
import os
import resource
import time
from importlib import import_module
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentops.settings")
django.setup()  # a no-op in the parent, where the apps are ready already

from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from budgets import escrow  # noqa: E402
from budgets.models import CapCounter  # noqa: E402
from budgets.pricing import cost_of_tokens, price_for, tokens_from_usage  # noqa: E402
from budgets.services import cost_of_usage, reservation_open, reservation_settle, spend_entry  # noqa: E402
from budgets.subjects import ChargedRun  # noqa: E402

START_TIMEOUT_S = 120.0  # a spawned child imports Django and connects: slow on a loaded machine, never this slow
USAGE = {"input_tokens": 120, "output_tokens": 40, "cache_read_input_tokens": 300}
MODEL, REPLY_MODEL = "claude-haiku-4-5", "claude-haiku-4-5-20251001"
MAX_TOKENS, INPUT_BOUND = 64, 512


def _ready(db_name: str, start: Any) -> None:
    """Connect to the parent's database (a test database under pytest), then wait for every process."""
    connection.settings_dict["NAME"] = db_name
    connection.ensure_connection()
    start.wait(timeout=START_TIMEOUT_S)  # a BrokenBarrierError fails the bench rather than timing a partial window


def _cpu() -> tuple[float, float]:
    """This process's CPU seconds and its PostgreSQL backend's (nan when not on this machine)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    try:
        with open(f"/proc/{connection.connection.info.backend_pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        server = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    except (OSError, IndexError, ValueError):
        server = math.nan
    return own.ru_utime + own.ru_stime, server


def _report(out: Any, n: int, before: tuple[float, float]) -> None:
    after = _cpu()
    out.put((n, after[0] - before[0], after[1] - before[1]))


def reserve_loop(runs: list[ChargedRun], db_name: str, seconds: float, start: Any, out: Any) -> None:
    """Reserve + settle, each settle as the harness sends it: in one round trip. A per-call
    reservation settles inside a relaxed commit (the harness's step commit,
    agentops/harness/durability.py; the reservation row it settles is durable); a call reserved
    against an escrow slice settles in one autocommit statement, which forces its own commit
    durable (budgets_settle_local: no durable reservation stands behind it)."""
    n, i = 0, 0
    _ready(db_name, start)
    cpu = _cpu()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        run = runs[i % len(runs)]
        i += 1
        res = reservation_open(run=run, model=MODEL, max_tokens=MAX_TOKENS, input_tokens_bound=INPUT_BOUND)
        if res.pk is None:
            reservation_settle(reservation=res, usage=USAGE, model=REPLY_MODEL)
        else:
            with transaction.atomic():
                with connection.cursor() as cur:
                    cur.execute("SET LOCAL synchronous_commit = off")
                reservation_settle(reservation=res, usage=USAGE, model=REPLY_MODEL)
        n += 1
    _report(out, n, cpu)
    escrow.return_all()  # a hot cap's slices go back (a no-op without escrow)


def admission_loop(runs: list[ChargedRun], db_name: str, seconds: float, start: Any, out: Any) -> None:
    """The cap's own work per call with escrow, without the ledger: ``reservation_open`` (the
    worst case, reserved in memory against the slice; a checkout or top-up — real statements on
    the hot counters — when the slice runs low) and the settle's in-memory part, which gives the
    slice back all but the call's cost. Nothing is written per call."""
    [run] = runs
    n = 0
    _ready(db_name, start)
    cost = cost_of_usage(model=REPLY_MODEL, usage=USAGE)  # priced as the settle prices it (the ledger's part)
    escrow.note_flag(run.tenant_id, True)  # what the first per-call reserve would have said: this tenant's caps are escrowed
    cpu = _cpu()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        res = reservation_open(run=run, model=MODEL, max_tokens=MAX_TOKENS, input_tokens_bound=INPUT_BOUND)
        if res.pk is not None or not res.escrow_lease_id:
            raise RuntimeError("cap admissions bench: a call was reserved per call, not against a slice")
        escrow.settled(res.escrow_lease_id, res.escrow_seq, cost)
        n += 1
    _report(out, n, cpu)
    escrow.return_all()


def ledger_function_sql() -> str:
    """``pg_temp.bench_settle_ledger``: budgets_settle_local (migration 0011) without its cap writes
    (the lease's ``spent``, the run's task counter) — the run's totals, the ledger row and its rollup
    row (sharded, ``p_shard``), committed durably. Its statements are cut from the migration's own
    text, so the baseline writes exactly what an escrow settle writes for the ledger."""
    fns = import_module("budgets.migrations.0011_escrow_local_functions").FUNCTIONS
    at = fns.index("CREATE OR REPLACE FUNCTION budgets_settle_local(")
    body = fns[fns.index("    UPDATE runs_run SET cost", at):fns.index("    FOR i IN 1 .. array_length(v_scopes, 1) LOOP", at)]
    assert "budgets_spendentry" in body and "budgets_dailyrollup" in body and "capcounter" not in body, body
    return (
        "CREATE OR REPLACE FUNCTION pg_temp.bench_settle_ledger(p_shard int, p_tenant bigint, p_run bigint, p_user bigint,"
        " p_day date, p_model text, p_cost numeric, p_in bigint, p_out bigint, p_w5 bigint, p_w1h bigint, p_read bigint,"
        " p_response_id text, p_unknown boolean, p_now timestamptz) RETURNS TABLE (entry_id bigint) LANGUAGE plpgsql AS $fn$\n"
        "DECLARE v_entry bigint; v_agent bigint; v_pv bigint; v_shard smallint := p_shard;\nBEGIN\n"
        "    PERFORM set_config('synchronous_commit', 'on', true);  -- as budgets_settle_local\n"
        f"{body}    RETURN QUERY SELECT v_entry;\nEND\n$fn$"
    )


def ledger_loop(runs: list[ChargedRun], shard: int, db_name: str, seconds: float, start: Any, out: Any) -> None:
    """What a call must write with no cap at all, as an escrow settle writes it: the usage priced,
    one durable autocommit statement (run totals, ledger row, rollup), the entry returned."""
    [run] = runs
    n = 0
    _ready(db_name, start)
    with connection.cursor() as cur:
        cur.execute(ledger_function_sql())
    cpu = _cpu()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        now = timezone.now()
        tokens = tokens_from_usage(USAGE)
        cost = cost_of_tokens(price_for(REPLY_MODEL, now), tokens)
        with connection.cursor() as cur:  # a cursor per call, as a settle opens one
            cur.execute(
                "SELECT * FROM pg_temp.bench_settle_ledger(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [shard, run.tenant_id, run.pk, run.submitted_by_id, now.date(), REPLY_MODEL, cost, tokens.input, tokens.output,
                 tokens.cache_write_5m, tokens.cache_write_1h, tokens.cache_read, "", False, now],
            )
            [(entry_id,)] = cur.fetchall()
        spend_entry(pk=entry_id, tenant_id=run.tenant_id, run_id=run.pk, reservation_id=None, response_id="",
                    user_id=run.submitted_by_id, model=REPLY_MODEL, tokens=tokens, cost=cost, day=now.date(), at=now,
                    unknown_outcome=False)
        n += 1
    _report(out, n, cpu)


def update_loop(row_id: int, db_name: str, seconds: float, start: Any, out: Any) -> None:
    table = CapCounter._meta.db_table
    n = 0
    _ready(db_name, start)
    cpu = _cpu()
    with connection.cursor() as cur:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            cur.execute(f"UPDATE {table} SET spent = spent + 1 WHERE id = %s", [row_id])  # noqa: S608
            n += 1
    _report(out, n, cpu)
