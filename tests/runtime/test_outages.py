"""Outages under traffic, with nobody at the keyboard: a 20 s PostgreSQL outage and a Redis restart.

Real ``AgentWorker`` processes and the production ``manage.py scheduler`` run against a
PostgreSQL and a Redis that this module starts on ports of its own (tests/services.py), so it
can stop them without touching the shared servers. Each test ends only when every run is
terminal by itself; then it checks that no side effect happened twice, no reservation is left
open and no ``tool_use`` lacks its ``tool_result``. The recovery time (service back → every run
terminal) is printed; README's "Outages and recovery" quotes it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from rq.registry import FailedJobRegistry

from tests.runtime.test_workers import SLOW_SIDE_EFFECTS
from tests.services import PrivatePostgres, PrivateRedis, private_postgres, private_redis
from tests.workers import ROOT, start_scheduler, start_worker, stop, wait_for, worker_env

pytestmark = [pytest.mark.slow]

TERMINAL = {"succeeded", "failed", "capped", "cancelled"}
# What production would set, shortened so the test takes seconds: leases, reconcile interval,
# and how long a queued run without a job waits before the reconciler sends it again.
ENV = {
    "RUN_LEASE_SECONDS": "5",
    "PERIODIC_RECONCILE_SECONDS": "2",
    "RECONCILE_QUEUED_GRACE_SECONDS": "3",
    "RQ_EAGER_FALLBACK": "0",
    "ANTHROPIC_API_KEY": "",
    "AGENTOPS_SCENARIO": "",
    "RQ_LOG_LEVEL": "INFO",
}
RUNS = 6


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[PrivatePostgres, PrivateRedis]]:
    with private_postgres() as pg, private_redis() as rd:
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True, timeout=300,
                       env=worker_env(database_url=pg.url, redis_url=rd.url, **ENV))
        yield pg, rd


@pytest.fixture
def scenario(tmp_path: Path) -> str:
    slow = {**SLOW_SIDE_EFFECTS, "steps": [{**s, "delay_ms": 600} for s in SLOW_SIDE_EFFECTS["steps"]]}
    path = tmp_path / "slow_side_effects.json"
    path.write_text(json.dumps(slow))
    return str(path)


def _app(pg: PrivatePostgres, rd: PrivateRedis, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "tests.outage_app", *args], cwd=ROOT, check=True, timeout=120,
                         capture_output=True, env=worker_env(database_url=pg.url, redis_url=rd.url, **ENV))
    return json.loads(out.stdout.decode().strip().splitlines()[-1])


def _statuses(pg: PrivatePostgres, ids: list[int]) -> dict[int, str] | None:
    try:
        with pg.connect() as conn:
            return dict(conn.execute("SELECT id, status FROM runs_run WHERE id = ANY(%s)", (ids,)).fetchall())
    except psycopg.OperationalError:
        return None  # the database is the one that is down


def _count(pg: PrivatePostgres, sql: str, ids: list[int]) -> int:
    try:
        with pg.connect() as conn:
            return int(conn.execute(sql, (ids,)).fetchone()[0])
    except psycopg.OperationalError:
        return -1


_STARTED_TOOLS = "SELECT count(DISTINCT run_id) FROM runs_toolcall WHERE run_id = ANY(%s)"


def _all_terminal(pg: PrivatePostgres, ids: list[int]) -> bool:
    statuses = _statuses(pg, ids)
    return statuses is not None and len(statuses) == len(ids) and set(statuses.values()) <= TERMINAL


def _wait_all_terminal(pg: PrivatePostgres, ids: list[int]) -> None:
    """Every run terminal within 120 s; if not, the failure says where each unfinished run stands."""
    try:
        wait_for(lambda: _all_terminal(pg, ids), timeout=120, interval=0.25, message="every run to finish by itself")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{_where_runs_stand(pg, ids)}") from None


def _where_runs_stand(pg: PrivatePostgres, ids: list[int]) -> str:
    try:
        with pg.connect() as conn:
            runs = conn.execute(
                "SELECT id, status, outcome, lease_owner, lease_expires_at, not_before, job_id, attempt, reschedules, "
                "cancel_requested, pause_requested, left(error_message, 200) FROM runs_run WHERE id = ANY(%s) "
                "AND status <> ALL(%s) ORDER BY id", (ids, sorted(TERMINAL))).fetchall()
            calls = conn.execute("SELECT run_id, tool_use_id, status FROM runs_toolcall WHERE run_id = ANY(%s) ORDER BY id",
                                 (ids,)).fetchall()
            escalations = conn.execute("SELECT run_id, kind, status FROM runs_escalation WHERE run_id = ANY(%s)",
                                       (ids,)).fetchall()
            events = conn.execute(
                "SELECT run_id, type, data::text FROM (SELECT run_id, type, data, row_number() OVER (PARTITION BY run_id "
                "ORDER BY id DESC) AS n FROM runs_runevent WHERE run_id = ANY(%s)) e WHERE n <= 4 ORDER BY run_id",
                (ids,)).fetchall()
    except psycopg.Error as exc:
        return f"(could not read the runs: {exc})"
    return f"unfinished runs: {runs}\ntool calls: {calls}\nescalations: {escalations}\nlast events: {events}"


def _assert_clean_end(pg: PrivatePostgres, rd: PrivateRedis, ids: list[int]) -> None:
    end = _app(pg, rd, "state", *map(str, ids))
    for run_id, run in end["runs"].items():
        assert run["status"] == "succeeded", (run_id, run)
        assert run["refunds"] <= 1 and run["emails"] == 1, (run_id, run)  # no side effect twice
        assert run["tool_calls"] == 3, (run_id, run)
        assert run["log_problem"] == "", (run_id, run)
    assert end["open_reservations"] == 0


def _start_all(pg: PrivatePostgres, rd: PrivateRedis) -> list[subprocess.Popen[bytes]]:
    procs = [start_worker("runs", "default", database_url=pg.url, redis_url=rd.url, **ENV) for _ in range(2)]
    return [*procs, start_scheduler(database_url=pg.url, redis_url=rd.url, **ENV)]


def test_a_20_second_postgres_outage_under_traffic_heals_by_itself(stack, scenario):
    pg, rd = stack
    ids = _app(pg, rd, "seed", "pg-outage", str(RUNS), scenario)["runs"]
    procs = _start_all(pg, rd)
    try:
        wait_for(lambda: _count(pg, _STARTED_TOOLS, ids) >= 2, timeout=120, interval=0.1, message="two runs past their first tool")
        statuses = _statuses(pg, ids)
        assert statuses is not None and sum(1 for s in statuses.values() if s not in TERMINAL) >= 3  # under traffic
        pg.stop()
        try:
            time.sleep(20)
            alive = [p.poll() is None for p in procs]
        finally:
            pg.start()
        back = time.monotonic()
        assert all(alive), f"a worker or the scheduler died during the outage: {alive}"
        _wait_all_terminal(pg, ids)
        recovery = time.monotonic() - back
        wait_for(lambda: _count(pg, "SELECT count(*) FROM budgets_reservation WHERE status = 'open' AND run_id = ANY(%s)",
                                ids) == 0, timeout=30, message="no open reservation")
        assert [p.poll() for p in procs] == [None] * len(procs)
        # A job that met the outage was retried, not dropped into rq:failed.
        conn = redis.Redis.from_url(rd.url)
        assert FailedJobRegistry("runs", connection=conn).get_job_ids() == []
    finally:
        for p in procs:
            stop(p)
    print(f"\nPostgreSQL back -> all {RUNS} runs terminal: {recovery:.1f} s")
    # Lease (5 s here) + one reconcile interval (2 s) + the job's retry backoff (≤ 8 s) bound it.
    assert recovery < 5 + 2 + 8 + 10
    _assert_clean_end(pg, rd, ids)


def test_a_redis_restart_with_busy_workers_heals_by_itself(stack, scenario):
    pg, rd = stack
    ids = _app(pg, rd, "seed", "redis-restart", str(RUNS), scenario)["runs"]
    procs = _start_all(pg, rd)
    try:
        wait_for(lambda: _count(pg, _STARTED_TOOLS, ids) >= 2, timeout=120, interval=0.1, message="two runs past their first tool")
        statuses = _statuses(pg, ids)
        assert statuses is not None and sum(1 for s in statuses.values() if s == "running") >= 1  # busy workers
        assert sum(1 for s in statuses.values() if s not in TERMINAL) >= 3
        rd.stop()  # no persistence: every queued job is lost with it
        try:
            time.sleep(3)
        finally:
            rd.start()
        back = time.monotonic()
        _wait_all_terminal(pg, ids)
        recovery = time.monotonic() - back
        wait_for(lambda: _count(pg, "SELECT count(*) FROM budgets_reservation WHERE status = 'open' AND run_id = ANY(%s)",
                                ids) == 0, timeout=30, message="no open reservation")
        assert [p.poll() for p in procs] == [None] * len(procs), "a worker or the scheduler exited on the Redis restart"
    finally:
        for p in procs:
            stop(p)
    print(f"\nRedis back -> all {RUNS} runs terminal: {recovery:.1f} s")
    assert recovery < 60
    _assert_clean_end(pg, rd, ids)
