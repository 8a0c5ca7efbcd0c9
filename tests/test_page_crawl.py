"""Every page and endpoint works on both databases: the generated crawl (tests/crawl.py) on
PostgreSQL in-process, and on SQLite — the demo's embedded default — in a process of its own
against a fresh SQLite file (migrated, seeded and crawled there, reported back as JSON)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import crawl
from tests.conftest import ensure_model_prices

ROOT = Path(__file__).resolve().parents[1]


def _assert_clean(problems: list[str], visits: int) -> None:
    assert visits >= 300, f"the crawl made only {visits} requests"
    assert problems == [], f"{len(problems)} problems:\n" + "\n".join(problems[:80])


@pytest.mark.django_db
def test_every_page_and_endpoint_answers_every_role_on_postgresql():
    from django.db import connection

    assert connection.vendor == "postgresql"
    ensure_model_prices()
    world = crawl.seed()
    visits = crawl.crawl(world)
    _assert_clean(crawl.check(visits, routes=crawl.crawlable_routes()) + crawl.data_problems(world), len(visits))
    statuses = {v.status for v in visits}
    assert {200, 403, 404, 302, 405} <= statuses


def test_every_page_and_endpoint_answers_every_role_on_sqlite(tmp_path):
    report_path = tmp_path / "report.json"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'crawl.sqlite3'}", "DJANGO_SETTINGS_MODULE": "agentops.settings"}
    proc = subprocess.run([sys.executable, "-m", "tests.crawl", str(report_path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert report_path.exists(), f"the SQLite crawl died (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
    report = json.loads(report_path.read_text())
    assert report["vendor"] == "sqlite"
    _assert_clean(report["problems"], len(report["visits"]))
    assert proc.returncode == 0
    # Pages of every kind rendered with the seeded rows, for the roles that may see them.
    ok_routes = {v["route"] for v in report["visits"] if v["status"] == 200}
    assert {"t/<slug:slug>/runs/", "t/<slug:slug>/runs/<str:run_id>/", "t/<slug:slug>/escalations/<str:escalation_id>/",
            "t/<slug:slug>/spend/", "api/v1/runs/<run_id>", "admin/"} <= ok_routes
