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

from django.db import connection  # noqa: E402

from budgets.models import CapCounter  # noqa: E402
from budgets.services import reservation_open, reservation_settle  # noqa: E402
from budgets.subjects import ChargedRun  # noqa: E402

USAGE = {"input_tokens": 120, "output_tokens": 40, "cache_read_input_tokens": 300}


def reserve_loop(runs: list[ChargedRun], seconds: float, start_at: float, out: Any) -> None:
    n, i = 0, 0
    while time.time() < start_at:
        time.sleep(0.001)
    end = start_at + seconds
    while time.time() < end:
        run = runs[i % len(runs)]
        i += 1
        res = reservation_open(run=run, model="claude-haiku-4-5", max_tokens=64, input_tokens_bound=512)
        reservation_settle(reservation=res, usage=USAGE, model="claude-haiku-4-5-20251001")
        n += 1
    out.put(n)


def update_loop(row_id: int, seconds: float, start_at: float, out: Any) -> None:
    table = CapCounter._meta.db_table
    n = 0
    with connection.cursor() as cur:
        while time.time() < start_at:
            time.sleep(0.001)
        end = start_at + seconds
        while time.time() < end:
            cur.execute(f"UPDATE {table} SET spent = spent + 1 WHERE id = %s", [row_id])  # noqa: S608
            n += 1
    out.put(n)
