"""GET /api/v1/runs (filters, keyset pages) and GET /api/v1/runs/<id>/messages (the durable log)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from runs.models import Agent, Message, Run, RunStatus
from tenants.services import api_key_create

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def get(client, tenant):  # type: ignore[no-untyped-def]
    tenant.tier.api_rate_limit_per_minute = 100_000
    tenant.tier.save()
    key = api_key_create(tenant=tenant, actor=None, name="app", scopes=["runs"])[1]

    def call(url, params=None):  # type: ignore[no-untyped-def]
        return client.get(url, params or {}, HTTP_AUTHORIZATION=f"Bearer {key}")

    return call


def _run(tenant, agent, *, at, status=RunStatus.QUEUED, **extra):  # type: ignore[no-untyped-def]
    return Run.objects.create(tenant=tenant, agent=agent, input="x", created_at=at, status=status, **extra)


@pytest.fixture
def agents(tenant):  # type: ignore[no-untyped-def]
    return (Agent.objects.create(tenant=tenant, name="support", system_prompt="x"),
            Agent.objects.create(tenant=tenant, name="billing", system_prompt="x"))


def _all_pages(get, params):  # type: ignore[no-untyped-def]
    ids, cursor, pages = [], None, 0
    while True:
        resp = get("/api/v1/runs", {**params, **({"cursor": cursor} if cursor else {})})
        assert resp.status_code == 200, resp.content
        body = resp.json()
        ids += [r["id"] for r in body["data"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return ids, pages


def test_it_lists_runs_newest_first(get, tenant, agents):
    old = _run(tenant, agents[0], at=T0)
    new = _run(tenant, agents[0], at=T0 + timedelta(minutes=1))
    body = get("/api/v1/runs").json()
    assert [r["id"] for r in body["data"]] == [new.pk, old.pk]
    assert body["next_cursor"] is None and body["data"][0]["agent"] == "support"


def test_pages_have_no_duplicates_or_gaps_when_timestamps_are_equal(get, tenant, agents):
    # 23 runs, 10 of them created in the very same microsecond: an offset or a timestamp-only
    # cursor would repeat or drop some of them at a page boundary.
    runs = [_run(tenant, agents[i % 2], at=T0) for i in range(10)]
    runs += [_run(tenant, agents[0], at=T0 + timedelta(seconds=i)) for i in range(1, 14)]
    expected = [r.pk for r in sorted(runs, key=lambda r: (r.created_at, r.pk), reverse=True)]
    for limit in (1, 3, 4, 10, 100):
        ids, pages = _all_pages(get, {"limit": str(limit)})
        assert ids == expected, limit
        assert pages == -(-len(expected) // limit), limit


def test_a_page_boundary_survives_new_runs_arriving(get, tenant, agents):
    for _ in range(5):
        _run(tenant, agents[0], at=T0)
    first = get("/api/v1/runs", {"limit": "2"}).json()
    _run(tenant, agents[0], at=T0 + timedelta(hours=1))  # newer than everything: not on the later pages
    _run(tenant, agents[0], at=T0)  # same instant, higher id: sorts before the cursor, so not repeated
    rest, _ = _all_pages(get, {"limit": "2", "cursor": first["next_cursor"]}) if first["next_cursor"] else ([], 0)
    seen = [r["id"] for r in first["data"]] + rest
    assert len(seen) == len(set(seen)) == 5


def test_it_filters_by_status_agent_and_created_range(get, tenant, agents):
    support, billing = agents
    a = _run(tenant, support, at=T0, status=RunStatus.SUCCEEDED)
    b = _run(tenant, billing, at=T0 + timedelta(hours=1), status=RunStatus.FAILED)
    c = _run(tenant, support, at=T0 + timedelta(hours=2), status=RunStatus.RUNNING)

    def ids(params):  # type: ignore[no-untyped-def]
        resp = get("/api/v1/runs", params)
        assert resp.status_code == 200, resp.content
        return {r["id"] for r in resp.json()["data"]}

    assert ids({"status": "succeeded"}) == {a.pk}
    assert ids({"status": "succeeded,failed"}) == {a.pk, b.pk}
    assert ids({"agent": "support"}) == {a.pk, c.pk}
    assert ids({"agent": "nobody"}) == set()
    assert ids({"created_after": "2026-03-01T13:00:00Z"}) == {b.pk, c.pk}  # inclusive
    assert ids({"created_before": "2026-03-01T13:00:00+00:00"}) == {a.pk}  # exclusive
    assert ids({"created_after": "2026-03-01T14:00:00+02:00"}) == {a.pk, b.pk, c.pk}  # 12:00 UTC
    assert ids({"created_after": "2026-03-01T12:30:00", "created_before": "2026-03-01T14:00:00"}) == {b.pk}  # naive = UTC
    assert ids({"agent": "support", "status": "running", "created_after": "2026-03-01"}) == {c.pk}
    # Filters hold across pages too.
    assert _all_pages(get, {"agent": "support", "limit": "1"}) == ([c.pk, a.pk], 2)


def test_it_filters_by_online_evaluator_flag_and_shows_flags_and_scores(get, tenant, agents):
    claim = _run(tenant, agents[0], at=T0, flags=["unsupported_claim"])
    _run(tenant, agents[0], at=T0 + timedelta(seconds=1), flags=["injection"])
    Message.objects.create(tenant=tenant, run=claim, seq=1, role="assistant", content=[{"type": "text", "text": "I've refunded it."}],
                           flags=["unsupported_claim"], scores={"unsupported_claim": 1.0})
    body = get("/api/v1/runs", {"flag": "unsupported_claim"}).json()
    assert [(r["id"], r["flags"]) for r in body["data"]] == [(claim.pk, ["unsupported_claim"])]
    msg = get(f"/api/v1/runs/{claim.pk}/messages").json()["data"][0]
    assert msg["flags"] == ["unsupported_claim"] and msg["scores"] == {"unsupported_claim": 1.0}


@pytest.mark.parametrize("params", [
    {"status": "done"}, {"limit": "0"}, {"limit": "101"}, {"limit": "ten"}, {"created_after": "last week"},
    {"created_before": "2026-02-30T00:00:00Z"}, {"cursor": "bm90LWEtY3Vyc29y"}, {"agent": "x" * 101}, {"flag": "no_such_flag"},
])
def test_bad_filters_are_a_json_400(get, params):
    resp = get("/api/v1/runs", params)
    assert resp.status_code == 400 and resp.json()["error"]["type"] == "invalid_request", resp.content
    assert list(params)[0] in resp.json()["error"]["message"]


def test_another_tenants_runs_are_not_listed_and_their_messages_are_404(get, tenant, other_tenant, agents):
    mine = _run(tenant, agents[0], at=T0)
    theirs_agent = Agent.objects.create(tenant=other_tenant, name="support", system_prompt="x")
    theirs = _run(other_tenant, theirs_agent, at=T0 + timedelta(seconds=1))
    Message.objects.create(tenant=other_tenant, run=theirs, seq=1, role="user", content="secret")
    assert [r["id"] for r in get("/api/v1/runs", {"agent": "support"}).json()["data"]] == [mine.pk]
    resp = get(f"/api/v1/runs/{theirs.pk}/messages")
    assert resp.status_code == 404 and resp.json()["error"]["type"] == "not_found"
    assert b"secret" not in resp.content
    # A cursor pointing at another tenant's run reveals nothing either: it is only a position.
    first = get("/api/v1/runs", {"limit": "1"}).json()
    assert [r["id"] for r in first["data"]] == [mine.pk] and first["next_cursor"] is None


def test_messages_come_in_order_redacted_and_in_pages(get, tenant, agents):
    run = _run(tenant, agents[0], at=T0)
    Message.objects.create(tenant=tenant, run=run, seq=2, role="assistant", model="claude-x", stop_reason="tool_use",
                           usage={"input_tokens": 5, "output_tokens": 2},
                           content=[{"type": "text", "text": "Mailing jane.doe@example.com"},
                                    {"type": "tool_use", "id": "t1", "name": "send_email", "input": {"to": "jane.doe@example.com"}}])
    Message.objects.create(tenant=tenant, run=run, seq=1, role="user", content="My card is 4111 1111 1111 1111, key aok_abcdef12_secretsecret99")
    Message.objects.create(tenant=tenant, run=run, seq=3, role="user",
                           content=[{"type": "tool_result", "tool_use_id": "t1", "content": "sent"}])
    body = get(f"/api/v1/runs/{run.pk}/messages").json()
    assert [m["seq"] for m in body["data"]] == [1, 2, 3] and body["next_after"] is None
    text = str(body)
    assert "jane.doe@example.com" not in text and "4111 1111 1111 1111" not in text and "secretsecret99" not in text
    assert body["data"][1]["content"][1]["name"] == "send_email" and body["data"][1]["usage"]["input_tokens"] == 5
    page = get(f"/api/v1/runs/{run.pk}/messages", {"limit": "2"}).json()
    assert [m["seq"] for m in page["data"]] == [1, 2] and page["next_after"] == 2
    rest = get(f"/api/v1/runs/{run.pk}/messages", {"after": "2", "limit": "2"}).json()
    assert [m["seq"] for m in rest["data"]] == [3] and rest["next_after"] is None
