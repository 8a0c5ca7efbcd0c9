"""Child-process entry points for the concurrency tests and the benchmark.

Each child is a fresh interpreter (spawn) with its own PostgreSQL connection to the database
named by the parent — for tests, pytest-django's test database.
"""

from __future__ import annotations

import os
from typing import Any

# Usage whose exact cost equals the worst case reserved for (input_bound=1000, max_tokens=100)
# on claude-sonnet-4-5: 1000 tokens at the 1-hour write rate $6 + 100 output at $15 = $0.0075.
FULL_USAGE = {
    "input_tokens": 0, "output_tokens": 100, "cache_creation_input_tokens": 1000,
    "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 1000},
}


def setup_django(db_name: str) -> None:
    os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{db_name}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentops.settings")
    import django

    django.setup()


def race_worker(db_name: str, run_ids: list[int], rounds: int, barrier: Any, out: Any) -> None:
    """Each round: wait at the barrier, reserve; settle odd successes at full cost, leave even ones open."""
    setup_django(db_name)
    from budgets.services import CostCapExceeded, reservation_open, reservation_settle
    from runs.models import Run

    runs = list(Run.unscoped.filter(pk__in=run_ids))
    ok = refused = 0
    try:
        for i in range(rounds):
            barrier.wait(timeout=60)
            try:
                res = reservation_open(run=runs[i % len(runs)], model="claude-sonnet-4-5", max_tokens=100, input_tokens_bound=1000)
            except CostCapExceeded as exc:
                if exc.scope != "tenant_month":
                    raise
                refused += 1
                continue
            ok += 1
            if ok % 2:
                reservation_settle(reservation=res, usage=FULL_USAGE, model="claude-sonnet-4-5-20250929")
    except BaseException as exc:
        barrier.abort()
        out.put(("error", repr(exc)))
        raise
    out.put((ok, refused))


def spend_worker(db_name: str, run_ids: list[int], n: int, out: Any) -> None:
    """Reserve and settle ``n`` calls with varied usage (rollup test)."""
    setup_django(db_name)
    import random

    from budgets.services import reservation_open, reservation_release, reservation_settle
    from runs.models import Run

    rng = random.Random(os.getpid())
    runs = list(Run.unscoped.filter(pk__in=run_ids))
    for _ in range(n):
        run = rng.choice(runs)
        model = rng.choice(["claude-sonnet-4-5", "claude-haiku-4-5-20251001", "claude-opus-4-5"])
        res = reservation_open(run=run, model=model, max_tokens=500, input_tokens_bound=5000)
        if rng.random() < 0.1:
            reservation_release(reservation=res)
            continue
        usage = {
            "input_tokens": rng.randint(0, 3000), "output_tokens": rng.randint(0, 500),
            "cache_read_input_tokens": rng.randint(0, 1000), "cache_creation_input_tokens": 0,
        }
        reservation_settle(reservation=res, usage=usage, model=model)
    out.put(n)


def crash_worker(db_name: str, run_id: int, how: str) -> None:
    """Reserve, then die without settling: os._exit or SIGKILL to itself."""
    setup_django(db_name)
    import signal

    from budgets.services import reservation_open
    from runs.models import Run

    run = Run.unscoped.get(pk=run_id)
    reservation_open(run=run, model="claude-sonnet-4-5", max_tokens=100, input_tokens_bound=1000)
    if how == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(3)


def escrow_worker(db_name: str, run_ids: list[int], seed: int, seconds: float, barrier: Any, out: Any) -> None:
    """Hammer a hot cap with escrow: random worst cases and costs, some releases, until ``seconds`` pass.

    Reports (calls settled or released, refusals, leases checked out) — unless the parent kills it first.
    """
    setup_django(db_name)
    import random
    import time

    from django.db import connection, transaction

    from budgets import escrow
    from budgets.services import CostCapExceeded, reservation_open, reservation_release, reservation_settle
    from runs.models import Run

    rng = random.Random(seed)
    runs = list(Run.unscoped.filter(pk__in=run_ids))
    done = refused = 0
    leases: set[int] = set()
    barrier.wait(timeout=120)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        max_tokens = rng.randint(20, 300)
        try:
            res = reservation_open(run=rng.choice(runs), model="claude-sonnet-4-5", max_tokens=max_tokens, input_tokens_bound=1000)
        except CostCapExceeded:
            refused += 1
            time.sleep(0.002)
            continue
        if res.escrow_lease_id:
            leases.add(res.escrow_lease_id)
        if rng.random() < 0.1:
            reservation_release(reservation=res)
        else:
            usage = {"input_tokens": rng.randint(0, 1000), "output_tokens": rng.randint(0, max_tokens), "cache_read_input_tokens": 0}
            with transaction.atomic(), connection.cursor() as cur:
                cur.execute("SET LOCAL synchronous_commit = off")  # as the harness settles: in its relaxed step commit
                reservation_settle(reservation=res, usage=usage, model="claude-sonnet-4-5-20250929")
        done += 1
    escrow.return_all()
    out.put((done, refused, len(leases)))
