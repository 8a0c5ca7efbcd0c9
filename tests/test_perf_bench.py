"""``manage.py bench runs-list`` and ``bench export`` run through the command, report figures beside
their baselines and the load, and fail loudly when they measured nothing."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def _bench(*args: str) -> tuple[dict, str]:  # type: ignore[type-arg]
    out = StringIO()
    call_command("bench", *args, stdout=out)
    text = out.getvalue()
    return json.loads(text.strip().splitlines()[-1]), text


def test_runs_list_bench_reports_keyset_beside_the_offset_count_baseline():
    figures, text = _bench("runs-list", "--opt", "runs=3000", "--opt", "repeat=1")
    assert figures["runs_in_tenant"] == 1000 and "cpus" in figures["load_after"]
    for case in ("first_page", "deep_page", "filter_failed", "search_chargeback", "search_refund"):
        assert figures[f"{case}_page_ms"] > 0 and figures[f"{case}_queries_ms"] > 0 and figures[f"{case}_baseline_queries_ms"] > 0
    assert "vs OFFSET/COUNT" in text and "load" in text


def test_export_bench_compares_copy_with_python_on_the_same_bytes():
    figures, text = _bench("export", "--opt", "rows=3000", "--opt", "repeat=1")
    assert figures["rows_exported"] == 3000 and figures["same_bytes"] is True
    assert figures["python_us_per_row"] > 0 and figures["copy_us_per_row"] > 0 and "load" in text


def test_inbox_bench_checks_the_order_and_reports_the_baseline():
    figures, text = _bench("inbox", "--opt", "pending=300", "--opt", "repeat=1")
    assert figures["pending_in_tenant"] == 300 and figures["query_ms"] > 0 and figures["baseline_query_ms"] > 0
    assert "join-then-sort" in text and "load" in text
