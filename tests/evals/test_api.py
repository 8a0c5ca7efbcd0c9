"""POST /api/v1/eval-runs starts an eval run; GET /api/v1/eval-runs/<id> follows it (scope evals)."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from agentops.evals import services
from tenants.services import api_key_create
from tests.evals.helpers import drive_eval, greeting_cases

pytestmark = pytest.mark.django_db


def _client(tenant, scopes=("evals",)):  # type: ignore[no-untyped-def]
    raw = api_key_create(tenant=tenant, actor=None, name="ci", scopes=list(scopes))[1]
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def _post(client, body):  # type: ignore[no-untyped-def]
    return client.post("/api/v1/eval-runs", json.dumps(body), content_type="application/json")


def test_ci_starts_an_eval_run_and_reads_its_failing_cases(suite, admin_user):
    for data in greeting_cases(3, 1):
        services.case_save(suite=suite, actor=admin_user, data=data)
    client = _client(suite.tenant)
    resp = _post(client, {"suite": suite.name, "version": 2})
    assert resp.status_code == 201, resp.content
    body = resp.json()
    assert body["trigger"] == "api" and body["version"] == 2 and body["total"] == 4 and body["pass_rate"] is None
    from agentops.evals.models import EvalRun

    drive_eval(EvalRun.objects.get(pk=body["id"]))
    done = client.get(resp["Location"]).json()
    assert done["status"] == "finished" and done["pass_rate"] == "0.7500" and done["passed"] == 3
    assert done["failing"] == [{"case": "fail-0", "critical": False, "reasons": ["the output does not contain 'refund'"]}]


@pytest.mark.parametrize(("body", "status", "word"), [
    ({"suite": "nope"}, 404, "No such eval suite"),
    ({"suite": "support-regressions", "version": 9}, 400, "has no version 9"),
    ({"suite": "support-regressions", "label": "canary"}, 400, "points at no version"),
    ({"suite": "support-regressions", "label": "production", "version": 1}, 400, "not both"),
])
def test_bad_requests_get_clear_errors(suite, admin_user, body, status, word):  # type: ignore[no-untyped-def]
    services.case_save(suite=suite, actor=admin_user, data=greeting_cases(1, 0)[0])
    resp = _post(_client(suite.tenant), body)
    assert resp.status_code == status and word in resp.json()["error"]["message"]


def test_a_key_without_the_evals_scope_is_refused(suite):
    assert _post(_client(suite.tenant, scopes=("runs",)), {"suite": suite.name}).status_code == 403
