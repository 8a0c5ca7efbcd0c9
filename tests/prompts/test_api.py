"""The prompts API: list, fetch with ETag/304, create (400 with problems), move (409 promotion_blocked)."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from agentops.prompts.models import PromptVersion
from tenants.models import Role
from tenants.services import api_key_create
from tests.prompts.conftest import BASE, new_version


@pytest.fixture
def api(tenant):  # type: ignore[no-untyped-def]
    raw = api_key_create(tenant=tenant, actor=None, name="ci", scopes=["prompts"])[1]
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def _post(api, url, body):  # type: ignore[no-untyped-def]
    return api.post(url, data=json.dumps(body), content_type="application/json")


def test_fetch_by_label_with_etag_and_304(tenant, members, prompt, api):  # type: ignore[no-untyped-def]
    v1 = new_version(tenant, members[Role.PROMPT_EDITOR], prompt)
    assert api.get("/api/v1/prompts/support").status_code == 404  # production points nowhere yet
    assert _post(api, "/api/v1/prompts/support/labels/staging", {"version": 1}).status_code == 200
    resp = api.get("/api/v1/prompts/support", {"label": "staging"})
    assert resp.status_code == 200
    body = resp.json()
    assert (body["version"], body["sha256"], body["label"], body["system"]) == (1, v1.sha256, "staging", BASE["system"])
    again = api.get("/api/v1/prompts/support", {"label": "staging"}, HTTP_IF_NONE_MATCH=resp["ETag"])
    assert again.status_code == 304 and again["ETag"] == resp["ETag"] and again.content == b""
    assert api.get("/api/v1/prompts/support", {"version": "1"}).json()["sha256"] == v1.sha256
    assert api.get("/api/v1/prompts").json()["data"][0]["labels"] == {"production": None, "staging": 1}


def test_create_a_version_and_bad_input_lists_the_problems(tenant, prompt, api):  # type: ignore[no-untyped-def]
    resp = _post(api, "/api/v1/prompts/support/versions", {**BASE, "first_message": "Hi {{x}}", "tools": ["issue_refund"]})
    assert resp.status_code == 400
    problems = resp.json()["error"]["problems"]
    assert "Undeclared variables: x" in problems["variables"] and "issue_refund" in problems["tools"]
    assert _post(api, "/api/v1/prompts/support/versions", {**BASE, "system": "a\u0000b"}).status_code == 400
    assert not PromptVersion.objects.exists()
    created = _post(api, "/api/v1/prompts/support/versions", {**BASE, "changelog": "first"})
    assert created.status_code == 201 and created.json()["version"] == 1


def test_there_is_no_way_to_change_a_version_over_the_api(tenant, members, prompt, api):  # type: ignore[no-untyped-def]
    v1 = new_version(tenant, members[Role.PROMPT_EDITOR], prompt)
    for method in ("put", "patch", "delete"):
        resp = getattr(api, method)("/api/v1/prompts/support", data=json.dumps({"system": "changed"}), content_type="application/json")
        assert resp.status_code == 405, method
    assert PromptVersion.objects.get(pk=v1.pk).system == BASE["system"]


def test_production_is_gated_and_a_key_cannot_override(tenant, members, prompt, api, evals):  # type: ignore[no-untyped-def]
    v1 = new_version(tenant, members[Role.PROMPT_EDITOR], prompt)
    evals.set(v1, "0.95", failing=("pii",), critical=("pii",))
    resp = _post(api, "/api/v1/prompts/support/labels/production", {"version": 1, "reason": "go"})
    assert resp.status_code == 409
    assert resp.json()["error"]["type"] == "promotion_blocked" and resp.json()["error"]["failing_cases"] == ["pii"]
    assert _post(api, "/api/v1/prompts/support/labels/production", {"version": 1, "reason": "go", "override": True}).status_code == 403
    for label in ("has%20space", "UPPER"):
        assert _post(api, f"/api/v1/prompts/support/labels/{label}", {"version": 1}).status_code == 400
