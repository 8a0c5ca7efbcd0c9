"""Real ``rqworker`` processes for tests, pointed at the test database and the test Redis db.

Use with ``@pytest.mark.django_db(transaction=True)`` so rows are committed and visible to the
workers. Workers are started in their own process group and killed at teardown.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def _database_url() -> str:
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{connection.settings_dict['NAME']}"


def worker_env(*, database_url: str | None = None, redis_url: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of a worker process: the test database and Redis unless others are given
    (the outage tests point workers at a PostgreSQL and a Redis of their own)."""
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": database_url or _database_url(),
        "REDIS_URL": redis_url or settings.REDIS_URL,
        "DJANGO_SETTINGS_MODULE": "agentops.settings",
        "RUN_LEASE_SECONDS": str(settings.RUN_LEASE_SECONDS),
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


def start_worker(*queues: str, burst: bool = False, database_url: str | None = None, redis_url: str | None = None,
                 worker_class: str = "agentops.worker.AgentWorker", **env: str) -> subprocess.Popen[bytes]:
    args = ["rqworker", *(queues or ("runs", "default")), "--worker-class", worker_class, "--with-scheduler"]
    if burst:
        args.append("--burst")
    return start_manage(*args, name="worker", database_url=database_url, redis_url=redis_url, **env)


def start_scheduler(*, database_url: str | None = None, redis_url: str | None = None, **env: str) -> subprocess.Popen[bytes]:
    """``manage.py scheduler``: the periodic jobs (reconciler, sweeps) as in production."""
    return start_manage("scheduler", name="scheduler", database_url=database_url, redis_url=redis_url, **env)


def start_manage(*args: str, name: str, database_url: str | None = None, redis_url: str | None = None,
                 **env: str) -> subprocess.Popen[bytes]:
    (ROOT / "var").mkdir(exist_ok=True)
    log = open(ROOT / "var" / f"test-{name}-{os.getpid()}-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115
    return subprocess.Popen([sys.executable, "manage.py", *args], cwd=ROOT,
                            env=worker_env(database_url=database_url, redis_url=redis_url, **env),
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def descendants(pid: int) -> list[int]:
    """All descendant pids (RQ's work horse runs in a process group of its own)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    """kill -9 the worker and its work horse at once, as a host crash or OOM kill would."""
    for pid in [*descendants(proc.pid), proc.pid]:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    if proc.poll() is None:
        if sig == signal.SIGKILL:
            kill_tree(proc)
        else:
            os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@contextmanager
def workers(n: int = 1, *queues: str, **env: str) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs = [start_worker(*queues, **env) for _ in range(n)]
    try:
        yield procs
    finally:
        for p in procs:
            stop(p)


def wait_for(predicate: Callable[[], bool], *, timeout: float = 60, interval: float = 0.2, message: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")
