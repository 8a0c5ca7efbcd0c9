"""A PostgreSQL outage under the real ``web`` and ``events`` processes: the API (both servers)
answers 503 JSON with Retry-After, the console a plain "temporarily unavailable" page; after the
database is back, the same servers answer normally again (no restart)."""

from __future__ import annotations

import json

import pytest
from django.conf import settings

from tests.services import free_port, private_postgres
from tests.serving.procs import (
    PASSWORD,
    Browser,
    answers,
    app_env,
    log_of,
    manage,
    procfile,
    request,
    seed,
    spawn,
    stop,
)
from tests.workers import wait_for


@pytest.fixture
def own_postgres():  # type: ignore[no-untyped-def]
    with private_postgres() as pg:
        yield pg


def _api(base: str, key: str, path: str, body: dict | None = None):  # type: ignore[no-untyped-def, type-arg]
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    data = json.dumps(body).encode() if body is not None else None
    return request(base + path, method="POST" if body is not None else "GET", body=data, headers=headers)


def _assert_api_unavailable(resp) -> None:  # type: ignore[no-untyped-def]
    assert resp.status == 503, (resp.status, resp.text[:500])
    assert resp.headers["content-type"] == "application/json"
    assert resp.json()["error"]["type"] == "service_unavailable"
    assert resp.json()["error"]["message"]
    assert int(resp.headers["retry-after"]) >= 1


@pytest.mark.parametrize("connections", [
    {},  # persistent connections, one per gunicorn thread (the default)
    {"DB_POOL_MAX_SIZE": "2", "DB_POOL_TIMEOUT": "1"},  # the psycopg pool
], ids=["persistent", "pool"])
def test_a_database_outage_answers_503_and_the_same_server_recovers(own_postgres, connections):
    env = app_env(own_postgres.url, settings.REDIS_URL)
    manage(env, "migrate", "--noinput")
    key = seed(env)
    port, events_port = free_port(), free_port()
    env |= {"WEB_CONCURRENCY": "1", "WEB_THREADS": "2", "EVENTS_DB_THREADS": "2"} | connections
    web = spawn(procfile()["web"], env, "outage-web", port)
    events = spawn(procfile()["events"], env, "outage-events", events_port)
    base, events_base = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{events_port}"
    try:
        for proc, p in ((web, port), (events, events_port)):
            wait_for(lambda proc=proc, p=p: answers(p) or proc.poll() is not None, timeout=30, message="servers to listen")
            assert proc.poll() is None, log_of(proc)
        created = _api(base, key, "/api/v1/runs", {"agent": "helper", "input": "Hello"})
        assert created.status == 201, created.text
        run_id = created.json()["id"]
        stream = _api(events_base, key, f"/api/v1/runs/{run_id}/events?follow=0")
        assert stream.status == 200 and "event: end" in stream.text
        console = Browser(base)
        console.login("acme-admin", PASSWORD)
        assert console.open("/t/acme/").status == 200

        own_postgres.stop()
        _assert_api_unavailable(_api(base, key, f"/api/v1/runs/{run_id}"))
        _assert_api_unavailable(_api(base, key, "/api/v1/runs", {"agent": "helper", "input": "Hello"}))
        _assert_api_unavailable(_api(events_base, key, f"/api/v1/runs/{run_id}/events"))
        for path in ("/t/acme/", f"/t/acme/runs/{run_id}/"):
            page = console.open(path)
            assert page.status == 503, (path, page.status, page.text[:500])
            assert page.headers["content-type"].startswith("text/html")
            assert "temporarily unavailable" in page.text and "Traceback" not in page.text
            assert int(page.headers["retry-after"]) >= 1
        # Logging in needs the database too.
        fresh = Browser(base)
        assert fresh.open("/login/").status == 200
        token = next(c.value for c in fresh.jar if c.name == "csrftoken")
        page = fresh.open("/login/", {"username": "acme-admin", "password": PASSWORD, "csrfmiddlewaretoken": token})
        assert page.status == 503 and "temporarily unavailable" in page.text

        own_postgres.start()
        # Persistent connections reconnect on the next request; the pool within its reconnect backoff.
        wait_for(lambda: _api(base, key, f"/api/v1/runs/{run_id}").status == 200, timeout=30, interval=0.5,
                 message="the API to answer again")
        assert _api(base, key, f"/api/v1/runs/{run_id}").json()["id"] == run_id
        assert console.open("/t/acme/").status == 200
        wait_for(lambda: _api(events_base, key, f"/api/v1/runs/{run_id}/events?follow=0").status == 200,
                 timeout=30, interval=0.5, message="the events server to answer again")
        assert "event: end" in _api(events_base, key, f"/api/v1/runs/{run_id}/events?follow=0").text
        assert web.poll() is None and events.poll() is None, "the servers must ride out the outage"
    finally:
        stop(web)
        stop(events)
