"""The runs API: submit, read, cancel, SSE; bad input gets a JSON 4xx; keys never cross tenants."""

from __future__ import annotations

import json

import django_rq
import pytest

from runs.models import Agent, Run, RunEvent, RunStatus
from tenants.services import api_key_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def key(tenant):  # type: ignore[no-untyped-def]
    return api_key_create(tenant=tenant, actor=None, name="app", scopes=["runs"])[1]


@pytest.fixture
def plain_agent(tenant):  # type: ignore[no-untyped-def]
    return Agent.objects.create(tenant=tenant, name="helper", system_prompt="Be brief.")


def post(client, url, body, key, **extra):  # type: ignore[no-untyped-def]
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(url, data=data, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}", **extra)


def test_submit_creates_a_queued_run_and_enqueues_a_job(client, key, plain_agent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        resp = post(client, "/api/v1/runs", {"agent": "helper", "input": "Hello", "metadata": {"scenario": "default"}}, key)
    assert resp.status_code == 201, resp.content
    body = resp.json()
    assert body["status"] == "queued" and body["agent"] == "helper"
    run = Run.objects.get(pk=body["id"])
    assert resp["Location"] == f"/api/v1/runs/{run.pk}" and resp["Content-Type"] == "application/json"
    assert body["created_at"] == run.created_at.isoformat() and body["cost_usd"] == "0.00"
    assert run.api_key is not None and run.submitter_role == "operator"
    queue = django_rq.get_queue("runs")
    assert any(job.args == (run.pk,) for job in queue.jobs)


def test_get_and_cancel(client, key, plain_agent):
    run_id = post(client, "/api/v1/runs", {"agent": plain_agent.pk, "input": "Hello"}, key).json()["id"]
    resp = client.get(f"/api/v1/runs/{run_id}", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert resp.status_code == 200 and resp.json()["id"] == run_id
    resp = post(client, f"/api/v1/runs/{run_id}/cancel", {}, key)
    assert resp.status_code == 200 and resp.json()["status"] == "cancelled"


@pytest.mark.parametrize(
    "body,status,error_type",
    [
        ("{not json", 400, "invalid_json"),
        ("[1, 2]", 400, "invalid_json"),
        ({"agent": "helper"}, 400, "invalid_request"),
        ({"agent": "helper", "input": ""}, 400, "invalid_request"),
        ({"agent": "helper", "input": 42}, 400, "invalid_request"),
        ({"agent": "helper", "input": "x", "tenant": "globex"}, 400, "invalid_request"),
        ({"agent": "nobody", "input": "x"}, 404, "not_found"),
        ({"agent": {"$ne": 1}, "input": "x"}, 400, "invalid_request"),  # neither a name nor an id
        ({"agent": "helper", "input": "x", "metadata": "nope"}, 400, "invalid_request"),
        ({"agent": "helper", "input": "x" * 150_000}, 400, "invalid_request"),
        ({"agent": "helper", "input": "x", "metadata": {"scenario": "/etc/passwd.json"}}, 400, "invalid_request"),
        ({"agent": "helper", "input": "x", "metadata": {"scenario": "no_such_scenario"}}, 400, "invalid_request"),
    ],
)
def test_bad_bodies_get_a_json_4xx_and_create_nothing(client, key, plain_agent, body, status, error_type):
    resp = post(client, "/api/v1/runs", body, key)
    assert resp.status_code == status, resp.content
    assert resp.json()["error"]["type"] == error_type
    assert Run.objects.count() == 0


def test_null_bytes_and_oversized_bodies_are_refused(client, key, plain_agent):
    resp = post(client, "/api/v1/runs", '{"agent": "helper", "input": "a\\u0000b"}', key)
    assert resp.status_code == 400 and resp.json()["error"]["type"] == "invalid_request"
    resp = post(client, "/api/v1/runs", json.dumps({"agent": "helper", "input": "x" * 400_000}), key)
    assert resp.status_code == 413
    assert Run.objects.count() == 0


def test_another_tenants_key_reaches_nothing(client, plain_agent, other_tenant):
    other_key = api_key_create(tenant=other_tenant, actor=None, name="other", scopes=["runs"])[1]
    resp = post(client, "/api/v1/runs", {"agent": "helper", "input": "x"}, other_key)
    assert resp.status_code == 404
    run = Run.objects.create(tenant=plain_agent.tenant, agent=plain_agent, input="x")
    for url in (f"/api/v1/runs/{run.pk}", f"/api/v1/runs/{run.pk}/events"):
        assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {other_key}").status_code == 404
    assert post(client, f"/api/v1/runs/{run.pk}/cancel", {}, other_key).status_code == 404
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED


def test_revoked_key_is_refused(client, tenant, plain_agent):
    from tenants.services import api_key_revoke

    row, raw = api_key_create(tenant=tenant, actor=None, name="old", scopes=["runs"])
    api_key_revoke(tenant=tenant, actor=None, key_id=row.pk)
    assert post(client, "/api/v1/runs", {"agent": "helper", "input": "x"}, raw).status_code == 401


def test_rate_limit_answers_429_with_retry_after(client, key, tenant, plain_agent, clock):
    # The limit counts per wall-clock minute: frozen 30 s into one, no request falls into the next.
    clock.move_to("2026-11-18T10:30:30+00:00")
    tenant.tier.api_rate_limit_per_minute = 3
    tenant.tier.save()
    codes = [client.get("/api/v1/runs/999", HTTP_AUTHORIZATION=f"Bearer {key}").status_code for _ in range(5)]
    assert codes[:3] == [404, 404, 404] and codes[3] == 429
    resp = client.get("/api/v1/runs/999", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert resp.status_code == 429 and int(resp["Retry-After"]) == 30
    # The next minute starts a new window.
    clock.shift(30)
    assert client.get("/api/v1/runs/999", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 404


def test_kill_switch_answers_409(client, key, tenant, plain_agent):
    tenant.runs_disabled = True
    tenant.save()
    resp = post(client, "/api/v1/runs", {"agent": "helper", "input": "x"}, key)
    assert resp.status_code == 409 and resp.json()["error"]["type"] == "kill_switch"


def test_events_stream_as_sse(client, key, plain_agent):
    run = Run.objects.create(tenant=plain_agent.tenant, agent=plain_agent, input="x", status=RunStatus.SUCCEEDED)
    for i, t in enumerate(["status", "turn", "status"]):
        RunEvent.objects.create(tenant=run.tenant, run=run, type=t, data={"n": i})
    resp = client.get(f"/api/v1/runs/{run.pk}/events", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert resp["Content-Type"] == "text/event-stream"
    text = b"".join(resp.streaming_content).decode()
    assert text.count("event: turn") == 1 and text.count("event: status") == 2
    assert "event: end" in text
    last = RunEvent.objects.filter(run=run).order_by("pk")[1].pk
    resp = client.get(f"/api/v1/runs/{run.pk}/events", HTTP_AUTHORIZATION=f"Bearer {key}", HTTP_LAST_EVENT_ID=str(last))
    text = b"".join(resp.streaming_content).decode()
    assert text.count("event: status") == 1 and "event: turn" not in text


def test_pause_and_resume_over_the_api(client, key, plain_agent):
    run = Run.objects.create(tenant=plain_agent.tenant, agent=plain_agent, input="x")
    resp = post(client, f"/api/v1/runs/{run.pk}/pause", {}, key)
    assert resp.status_code == 202 and resp.json()["status"] == "paused"
    resp = post(client, f"/api/v1/runs/{run.pk}/resume", {}, key)
    assert resp.status_code == 202 and resp.json()["status"] == "queued"
    resp = post(client, f"/api/v1/runs/{run.pk}/resume", {}, key)
    assert resp.status_code == 409 and resp.json()["error"]["type"] == "invalid_state"


def test_readyz_reports_database_and_redis_and_nothing_else_to_the_public(client):
    body = client.get("/readyz").json()
    assert body == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
    assert client.get("/healthz").json() == {"status": "ok"}


# Secret canaries: an API-key-shaped string and PII. The API shows them redacted, as the console
# and the logs do; the run keeps the original (the harness reads its metadata).
CANARY_KEY = "sk-ant-api03-CanaryCanary0123456789"
CANARY_AOK = "aok_c4nary00_S3cretS3cretS3cret"
CANARY_MAIL = "jane.canary@example.com"
CANARY_CARD = "4111 1111 1111 1111"
CANARIES = (CANARY_KEY, CANARY_AOK, CANARY_MAIL, CANARY_CARD)


def _no_canary(text: str) -> None:
    for canary in CANARIES:
        assert canary not in text, canary


def test_the_api_returns_metadata_results_and_events_redacted(client, key, plain_agent):
    metadata = {"api_key": CANARY_KEY, "contact": CANARY_MAIL, "nested": {"card": CANARY_CARD, "keys": [CANARY_AOK]}, "plain": "ok"}
    resp = post(client, "/api/v1/runs", {"agent": "helper", "input": "x", "metadata": metadata}, key)
    assert resp.status_code == 201, resp.content
    _no_canary(resp.content.decode())
    run = Run.objects.get(pk=resp.json()["id"])
    assert run.metadata == metadata
    Run.objects.filter(pk=run.pk).update(status=RunStatus.FAILED, result=f"Mailed {CANARY_MAIL}", error_type="tool_error",
                                         error_message=f"auth failed for {CANARY_KEY}")
    RunEvent.objects.create(tenant=run.tenant, run=run, type="turn", data={"text": f"card {CANARY_CARD}"})
    resp = client.get(f"/api/v1/runs/{run.pk}", HTTP_AUTHORIZATION=f"Bearer {key}")
    body = resp.json()
    _no_canary(resp.content.decode())
    assert body["metadata"] == {"api_key": "[REDACTED]", "contact": "[REDACTED]",
                                "nested": {"card": "[REDACTED]", "keys": ["[REDACTED]"]}, "plain": "ok"}
    assert body["result"] == "Mailed [REDACTED]" and body["error"]["message"] == "auth failed for [REDACTED]"
    resp = client.get(f"/api/v1/runs/{run.pk}/events?follow=0", HTTP_AUTHORIZATION=f"Bearer {key}")
    text = b"".join(resp.streaming_content).decode()
    assert "card [REDACTED]" in text
    _no_canary(text)
