"""The bodies of budgets' benchmark processes (``multiprocessing`` spawn children).

A spawned child imports this module before anything else, so it sets Django up first, here at the
top, and only then imports the models: the rest of ``budgets.bench`` can import them normally.
"""

from __future__ import annotations

import os
import time
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentops.settings")
django.setup()  # a no-op in the parent, where the apps are ready already

from django.db import connection, transaction  # noqa: E402

from budgets import escrow  # noqa: E402
from budgets.models import CapCounter  # noqa: E402
from budgets.services import reservation_open, reservation_settle  # noqa: E402
from budgets.subjects import ChargedRun  # noqa: E402

START_TIMEOUT_S = 120.0  # a spawned child imports Django and connects: slow on a loaded machine, never this slow
USAGE = {"input_tokens": 120, "output_tokens": 40, "cache_read_input_tokens": 300}


def _ready(db_name: str, start: Any) -> None:
    """Connect to the parent's database (a test database under pytest), then wait for every process."""
    connection.settings_dict["NAME"] = db_name
    connection.ensure_connection()
    start.wait(timeout=START_TIMEOUT_S)  # a BrokenBarrierError fails the bench rather than timing a partial window


def _relax() -> None:
    with connection.cursor() as cur:
        cur.execute("SET LOCAL synchronous_commit = off")


def reserve_loop(runs: list[ChargedRun], db_name: str, seconds: float, start: Any, out: Any) -> None:
    n, i = 0, 0
    _ready(db_name, start)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        run = runs[i % len(runs)]
        i += 1
        res = reservation_open(run=run, model="claude-haiku-4-5", max_tokens=64, input_tokens_bound=512)
        with transaction.atomic():
            _relax()  # as the harness settles: inside its step's relaxed commit (agentops/harness/durability.py)
            reservation_settle(reservation=res, usage=USAGE, model="claude-haiku-4-5-20251001")
        n += 1
    escrow.return_all()  # a hot cap's slices go back (a no-op without escrow)
    out.put(n)


def update_loop(row_id: int, db_name: str, seconds: float, start: Any, out: Any) -> None:
    table = CapCounter._meta.db_table
    n = 0
    _ready(db_name, start)
    with connection.cursor() as cur:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            cur.execute(f"UPDATE {table} SET spent = spent + 1 WHERE id = %s", [row_id])  # noqa: S608
            n += 1
    out.put(n)
