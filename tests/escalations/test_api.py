"""The escalations API: list pending and decide with a key that has the ``escalations`` scope."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from agentops.escalations.models import Escalation
from runs.models import Run, RunStatus
from tenants.models import ApiScope, AuditEvent, Role
from tenants.services import api_key_create
from tests.escalations.conftest import gated

pytestmark = pytest.mark.django_db


def _client(raw: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def _post(client: Client, url: str, body: object):  # type: ignore[no-untyped-def]
    return client.post(url, data=json.dumps(body), content_type="application/json")


def test_list_pending_with_the_arguments_and_their_hash(agent, escalations_key):
    esc = gated(agent, "refund_over_limit")
    gated(agent, "email_customer")
    resp = _client(escalations_key).get("/api/v1/escalations")
    assert resp.status_code == 200
    data = resp.json()["data"]
    assert [d["tool"] for d in data] == ["issue_refund", "send_email"]  # high urgency first
    first = data[0]
    assert first["id"] == esc.pk and first["arguments"]["amount"] == "900.00"
    assert first["arguments_sha256"] == esc.arguments_sha256 and first["status"] == "pending"
    assert first["grant"]["approval_over"] == {"amount": "100.00"}
    assert _client(escalations_key).get("/api/v1/escalations?status=approved").json()["data"] == []
    assert _client(escalations_key).get("/api/v1/escalations?status=nope").status_code == 400
    assert _client(escalations_key).get("/api/v1/escalations?limit=0").status_code == 400


def test_approve_then_second_decision_is_409(agent, escalations_key, django_capture_on_commit_callbacks):
    esc = gated(agent)
    client = _client(escalations_key)
    body = {"decision": "approve", "arguments_sha256": esc.arguments_sha256, "comment": "ok"}
    with django_capture_on_commit_callbacks(execute=True):
        resp = _post(client, f"/api/v1/escalations/{esc.pk}/decide", body)
    assert resp.status_code == 200, resp.content
    assert resp.json()["status"] == "approved" and resp.json()["decided_by_key"]
    assert Run.objects.get(pk=esc.run_id).status == RunStatus.QUEUED
    replay = _post(client, f"/api/v1/escalations/{esc.pk}/decide", body)
    assert replay.status_code == 409 and replay.json()["error"]["type"] == "already_decided"
    other = _post(client, f"/api/v1/escalations/{esc.pk}/decide", {"decision": "reject", "comment": "no"})
    assert other.status_code == 409
    audit = AuditEvent.objects.get(action="escalation.approved")
    assert audit.actor_key is not None and audit.actor is None and audit.after["run_id"] == esc.run_id


def test_approve_needs_the_hash_and_refuses_other_arguments(agent, escalations_key):
    esc = gated(agent)
    client = _client(escalations_key)
    url = f"/api/v1/escalations/{esc.pk}/decide"
    assert _post(client, url, {"decision": "approve"}).status_code == 400
    resp = _post(client, url, {"decision": "approve", "arguments_sha256": "a" * 64})
    assert resp.status_code == 409 and resp.json()["error"]["type"] == "arguments_mismatch"
    forged = {**esc.arguments, "to": "attacker@evil.example"}
    resp = _post(client, url, {"decision": "approve", "arguments_sha256": esc.arguments_sha256, "arguments": forged})
    assert resp.status_code == 409 and resp.json()["error"]["type"] == "arguments_mismatch"
    esc.refresh_from_db()
    assert esc.status == "pending"


@pytest.mark.parametrize("body,status", [
    ({"decision": "approve", "arguments_sha256": 5}, 400),
    ({"decision": "reject"}, 400),
    ({"decision": "reject", "comment": ["x"]}, 400),
    ({"decision": "later"}, 400),
    ({"decision": "reject", "comment": "x", "status": "approved"}, 400),
])
def test_bad_bodies_get_clear_400s(agent, escalations_key, body, status):
    esc = gated(agent)
    resp = _post(_client(escalations_key), f"/api/v1/escalations/{esc.pk}/decide", body)
    assert resp.status_code == status and "error" in resp.json()
    esc.refresh_from_db()
    assert esc.status == "pending"


def test_malformed_json_is_400(agent, escalations_key):
    esc = gated(agent)
    resp = _client(escalations_key).post(f"/api/v1/escalations/{esc.pk}/decide", data="{nope", content_type="application/json")
    assert resp.status_code == 400


def test_scope_and_tenant_isolation(agent, other_tenant, outsider, runs_only_key, escalations_key):
    esc = gated(agent)
    assert Client().get("/api/v1/escalations").status_code == 401
    assert _client(runs_only_key).get("/api/v1/escalations").status_code == 403
    _, globex_key = api_key_create(tenant=other_tenant, actor=outsider, name="globex", scopes=[ApiScope.ESCALATIONS], acts_as_role=Role.OPERATOR)
    globex = _client(globex_key)
    assert globex.get("/api/v1/escalations").json()["data"] == []
    assert globex.get(f"/api/v1/escalations/{esc.pk}").status_code == 404
    resp = _post(globex, f"/api/v1/escalations/{esc.pk}/decide", {"decision": "approve", "arguments_sha256": esc.arguments_sha256})
    assert resp.status_code == 404
    assert Escalation.objects.get(pk=esc.pk).status == "pending"
    assert _client(escalations_key).get(f"/api/v1/escalations/{esc.pk}").json()["id"] == esc.pk
    assert _client(escalations_key).get("/api/v1/escalations/abc").status_code == 404


def test_escalations_are_shown_redacted_and_decided_by_the_exact_hash(agent, escalations_key):
    canary_key, canary_mail = "sk-ant-api03-CanaryCanary0123456789", "jane.canary@example.com"
    esc = gated(agent)
    Escalation.objects.filter(pk=esc.pk).update(
        arguments={**esc.arguments, "note": f"use {canary_key}", "cc": canary_mail},
        reason=f"ask {canary_mail}", context_summary=f"key {canary_key}",
    )
    esc.refresh_from_db()
    client = _client(escalations_key)
    for resp in (client.get("/api/v1/escalations"), client.get(f"/api/v1/escalations/{esc.pk}")):
        text = resp.content.decode()
        assert resp.status_code == 200 and canary_key not in text and canary_mail not in text
    shown = client.get(f"/api/v1/escalations/{esc.pk}").json()
    assert shown["arguments"]["cc"] == "[REDACTED]" and shown["reason"] == "ask [REDACTED]"
    assert shown["arguments_sha256"] == esc.arguments_sha256  # the hash of the exact arguments
    resp = _post(client, f"/api/v1/escalations/{esc.pk}/decide",
                 {"decision": "reject", "comment": f"not to {canary_mail}"})
    assert resp.status_code == 200 and resp.json()["comment"] == "not to [REDACTED]"


def test_the_documented_enums_are_the_services_own():
    from typing import get_args

    from agentops.escalations import api, selectors, services

    assert set(get_args(api.Decision)) == set(services.ALL_DECISIONS)
    assert set(get_args(api.Kind)) == set(selectors.KINDS)
