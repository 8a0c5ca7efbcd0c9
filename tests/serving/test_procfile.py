"""The Procfile is the production set-up: every process in it starts against a fresh database and
together they serve a run end to end, over the HTTP API with an API key, its events streamed by
the ``events`` (ASGI) server. Open streams hold no thread, and connections stay bounded."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from django.conf import settings
from django.core.management import get_commands

from tests.services import free_port, private_postgres
from tests.serving.procs import (
    answers,
    app_env,
    log_of,
    procfile,
    request,
    seed,
    spawn,
    stop,
)
from tests.workers import wait_for

WEB_WORKERS, WEB_THREADS, EVENTS_DB_THREADS = 2, 4, 2


@pytest.fixture
def own_postgres():  # type: ignore[no-untyped-def]
    with private_postgres() as pg:
        yield pg


def test_the_procfile_names_the_production_processes():
    processes = procfile()
    assert set(processes) == {"release", "web", "worker", "scheduler", "events"}
    assert processes["web"].startswith("gunicorn ")
    assert processes["events"].startswith("uvicorn agentops.asgi:application")
    assert processes["worker"] == (
        "python manage.py rqworker runs default --worker-class agentops.worker.AgentWorker --with-scheduler"
    )
    assert processes["scheduler"] == "python manage.py scheduler"


class Stream:
    """One SSE subscriber in a thread: collects frames until ``event: end``."""

    def __init__(self, url: str, key: str):
        self.frames: list[tuple[str, str]] = []
        self.headers: dict[str, str] = {}
        self.opened = threading.Event()
        self.thread = threading.Thread(target=self._read, args=(url, key), daemon=True)
        self.thread.start()

    def _read(self, url: str, key: str) -> None:
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            self.headers = {k.lower(): v for k, v in resp.headers.items()}
            event = ""
            for raw in resp:
                line = raw.decode().rstrip("\n")
                self.opened.set()
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    self.frames.append((event, line[6:]))
                    if event == "end":
                        return

    @property
    def end_status(self) -> str | None:
        ends = [json.loads(d)["status"] for e, d in self.frames if e == "end"]
        return ends[0] if ends else None


def test_every_procfile_process_serves_a_run_end_to_end(own_postgres):
    processes = procfile()
    # The "scheduler" command comes with the scheduler work; every process whose command exists runs.
    startable = {n: c for n, c in processes.items()
                 if not c.startswith("python manage.py ") or c.split()[2] in get_commands()}
    env = app_env(own_postgres.url, settings.REDIS_URL,
                  WEB_CONCURRENCY=str(WEB_WORKERS), WEB_THREADS=str(WEB_THREADS),
                  EVENTS_DB_THREADS=str(EVENTS_DB_THREADS), RUN_LEASE_SECONDS="10")
    release = spawn(processes["release"], env, "release")
    assert release.wait(timeout=180) == 0, log_of(release)
    key = seed(env)
    auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    web_port, events_port = free_port(), free_port()
    web_url, events_url = f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{events_port}"
    running = {"web": spawn(startable["web"], env, "web", web_port),
               "events": spawn(startable["events"], env, "events", events_port)}
    peak = [0]
    sampling = threading.Event()

    def sample_connections() -> None:
        with psycopg.connect(own_postgres.url_of("postgres"), autocommit=True) as conn:
            while not sampling.is_set():
                n = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = 'agentops'").fetchone()[0]
                peak[0] = max(peak[0], n)
                time.sleep(0.05)

    sampler = threading.Thread(target=sample_connections, daemon=True)
    sampler.start()
    try:
        for name, port in (("web", web_port), ("events", events_port)):
            wait_for(lambda p=port, n=name: answers(p) or running[n].poll() is not None, timeout=30, message=f"{name} to listen")
            assert running[name].poll() is None, log_of(running[name])

        def submit() -> str:
            resp = request(f"{web_url}/api/v1/runs", method="POST", headers=auth,
                           body=json.dumps({"agent": "helper", "input": "Hello", "metadata": {"scenario": "default"}}).encode())
            assert resp.status == 201, resp.text[:500]
            return resp.json()["id"]

        # A paused run's followers stay subscribed (keep-alives) until it ends: 12 open streams, then 13.
        held = submit()
        assert request(f"{web_url}/api/v1/runs/{held}/pause", method="POST", headers=auth, body=b"{}").status == 202
        followers = [Stream(f"{events_url}/api/v1/runs/{held}/events", key) for _ in range(12)]
        for f in followers:
            assert f.opened.wait(20), "an SSE stream did not open"
        assert followers[0].headers["content-type"] == "text/event-stream"
        assert followers[0].headers["server"] == "uvicorn"
        # With every stream open, the one events process (2 database threads) still answers at once.
        started = time.monotonic()
        late = Stream(f"{events_url}/api/v1/runs/{held}/events", key)
        assert late.opened.wait(5) and time.monotonic() - started < 2
        followers.append(late)
        # It serves streams only: the console and the rest of the API are web's.
        assert request(f"{events_url}/api/v1/runs/{held}", headers=auth).status == 404
        assert request(f"{events_url}/t/acme/").status == 404
        assert request(f"{events_url}/healthz").status == 200

        # 48 clients at once on web: a bounded set of threads and connections, no "too many clients".
        with ThreadPoolExecutor(48) as pool:
            statuses = list(pool.map(lambda _: request(f"{web_url}/api/v1/runs/{held}", headers=auth).status, range(48)))
        assert statuses == [200] * 48

        for name in ("worker", "scheduler"):
            if name in startable:
                running[name] = spawn(startable[name], env, name)
        run_id = submit()
        stream = Stream(f"{events_url}/api/v1/runs/{run_id}/events", key)
        stream.thread.join(60)
        assert stream.end_status == "succeeded", (stream.frames, log_of(running["worker"]))
        assert any(e == "turn" for e, _ in stream.frames)
        assert request(f"{web_url}/api/v1/runs/{run_id}", headers=auth).json()["status"] == "succeeded"

        assert request(f"{web_url}/api/v1/runs/{held}/resume", method="POST", headers=auth, body=b"{}").status == 202
        for f in followers:
            f.thread.join(60)
        assert [f.end_status for f in followers] == ["succeeded"] * 13

        for name, proc in running.items():
            assert proc.poll() is None, f"{name} exited:\n{log_of(proc)}"
    finally:
        sampling.set()
        sampler.join(5)
        for proc in running.values():
            stop(proc)
    # web: one connection per thread; events: one per database thread; worker, work horse, scheduler.
    bound = WEB_WORKERS * WEB_THREADS + EVENTS_DB_THREADS + 4
    assert 0 < peak[0] <= bound, (peak[0], bound)
