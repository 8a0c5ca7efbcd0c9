"""``manage.py bench export``: the ledger CSV export, PostgreSQL COPY beside the Python csv path.

Uses the spend-page bench tenant's ledger (filled once to ``rows`` rows), exports its whole range
both ways in the same run, checks the two are the same bytes (SHA-256) and prints µs per row and the
ratio, with the machine's load. Fails when the export had no rows or the bytes differ.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable
from typing import Any

from django.db import connection
from django.db.models import Max, Min

from agentops.bench import benchmark
from budgets.bench import _page_tenant, fill_ledger
from budgets.export import ledger_csv_copy, ledger_csv_rows
from budgets.models import SpendEntry
from budgets.selectors import DateRange


def _drain(chunks: Iterable[bytes]) -> tuple[float, str, int]:
    digest, size = hashlib.sha256(), 0
    t0 = time.perf_counter()
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
    return time.perf_counter() - t0, digest.hexdigest(), size


@benchmark("export", help="ledger CSV export: PostgreSQL COPY vs the Python csv path, same rows, same bytes", rows=200_000, repeat=3)
def bench_export(*, stdout: Any, rows: int, repeat: int) -> dict[str, Any]:
    if connection.vendor != "postgresql":
        raise RuntimeError("bench export compares against COPY: run it against PostgreSQL (DATABASE_URL).")
    tenant = _page_tenant()
    if SpendEntry.unscoped.filter(tenant=tenant).count() != rows:
        _page_tenant(reset=True)
        fill_ledger(tenant=tenant, rows=rows, runs=max(1000, rows // 20))
        with connection.cursor() as cur:
            cur.execute("ANALYZE")
    span = SpendEntry.unscoped.filter(tenant=tenant).aggregate(start=Min("day"), end=Max("day"))
    rng = DateRange(start=span["start"], end=span["end"])
    n = SpendEntry.unscoped.filter(tenant=tenant, day__gte=rng.start, day__lte=rng.end).count()
    if not n:
        raise RuntimeError("the bench ledger is empty: the benchmark measured nothing")
    load_before = os.getloadavg()
    python_s, copy_s = [], []
    for _ in range(repeat):
        t, python_hash, python_bytes = _drain(line.encode() for line in ledger_csv_rows(tenant=tenant, rng=rng))
        python_s.append(t)
        t, copy_hash, copy_bytes = _drain(ledger_csv_copy(tenant=tenant, rng=rng))
        copy_s.append(t)
        if copy_hash != python_hash:
            raise RuntimeError(f"COPY and Python exports differ ({copy_bytes} vs {python_bytes} bytes)")
    py, cp = min(python_s), min(copy_s)
    load = os.getloadavg()
    stdout.write(f"{n} rows, {python_bytes} bytes: Python {py * 1e6 / n:.2f} µs/row ({py:.2f}s), COPY {cp * 1e6 / n:.2f} µs/row ({cp:.2f}s), "
                 f"{py / cp:.1f}× faster; load {load_before[0]:.2f} → {load[0]:.2f} on {os.cpu_count()} cpus")
    return {"database": connection.vendor, "rows_exported": n, "bytes": python_bytes, "same_bytes": True,
            "python_us_per_row": round(py * 1e6 / n, 2), "copy_us_per_row": round(cp * 1e6 / n, 2), "copy_speedup": round(py / cp, 1),
            "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in load]}
