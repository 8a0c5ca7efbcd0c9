"""The evals pages: writers create and edit, everyone reads; bad definitions are 400s listing every problem."""

from __future__ import annotations

import html
import json

import pytest

from agentops.evals import services
from agentops.evals.models import EvalCase, EvalRun
from agentops.harness.loop import drive_run
from runs.models import Run
from tenants.models import Role
from tests.conftest import login
from tests.evals.helpers import drive_eval, greeting_cases

pytestmark = pytest.mark.django_db


def _suite_url(suite) -> str:  # type: ignore[no-untyped-def]
    return f"/t/{suite.tenant.slug}/evals/suites/{suite.pk}/"


@pytest.mark.parametrize(("definition", "problem"), [
    ("{not json", "invalid JSON"),
    (json.dumps({"name": "x", "input": "hi", "checks": [{"type": "tool_called", "tool": "launch_missiles"}]}), "unknown tool 'launch_missiles'"),
    (json.dumps({"name": "x", "input": "hi", "checks": [{"type": "judge", "rubric": "ok", "threshold": 7}]}), "threshold must be a number from 0 to 1"),
    (json.dumps({"name": "x", "input": "hi", "checks": [{"type": "regex", "pattern": "(("}]}), "pattern does not compile"),
])
def test_a_bad_case_is_refused_with_its_problems_and_nothing_saved(suite, members, definition, problem):  # type: ignore[no-untyped-def]
    resp = login(members[Role.PROMPT_EDITOR]).post(_suite_url(suite), {"action": "case", "definition": definition})
    assert resp.status_code == 400 and problem in html.unescape(resp.content.decode())
    assert not EvalCase.objects.exists()


def test_a_prompt_editor_adds_a_case_and_a_viewer_may_only_read(suite, members):
    data = json.dumps(greeting_cases(1, 0)[0])
    assert login(members[Role.VIEWER]).post(_suite_url(suite), {"action": "case", "definition": data}).status_code == 403
    assert login(members[Role.VIEWER]).get(_suite_url(suite)).status_code == 200
    resp = login(members[Role.PROMPT_EDITOR]).post(_suite_url(suite), {"action": "case", "definition": data})
    assert resp.status_code == 302 and EvalCase.objects.get().name == "pass-0"


def test_jsonl_import_is_all_or_nothing_and_export_round_trips(suite, members):
    client = login(members[Role.ADMIN])
    lines = "\n".join(json.dumps(c) for c in greeting_cases(2, 1))
    bad = lines + '\n{"name": "broken", "input": "x", "checks": [{"type": "max_turns", "value": 0}]}'
    resp = client.post(_suite_url(suite), {"action": "import", "jsonl": bad})
    assert resp.status_code == 400 and "line 4.checks[0] (max_turns)" in html.unescape(resp.content.decode()) and not EvalCase.objects.exists()
    assert client.post(_suite_url(suite), {"action": "import", "jsonl": lines}).status_code == 302
    exported = client.get(_suite_url(suite) + "export.jsonl").content.decode()
    assert [json.loads(line)["name"] for line in exported.splitlines()] == ["fail-0", "pass-0", "pass-1"]
    assert client.post(_suite_url(suite), {"action": "import", "jsonl": exported, "replace": "on"}).status_code == 302
    assert EvalCase.objects.count() == 3


def test_a_run_becomes_a_case_with_its_tool_results_as_fixtures(suite, members, agent):
    run = Run.objects.create(tenant=agent.tenant, agent=agent, input="Refund my duplicate charge", metadata={"scenario": "support_refund"})
    drive_run(run.pk, worker_id="t")
    client = login(members[Role.PROMPT_EDITOR])
    url = f"/t/{suite.tenant.slug}/evals/add-run/{run.pk}/"
    assert client.get(url).status_code == 200
    resp = client.post(url, {"suite": suite.pk, "name": "from-run"})
    assert resp.status_code == 302
    case = EvalCase.objects.get(name="from-run")
    assert case.input == run.input and case.source_run_id == run.pk
    assert [f["tool"] for f in case.fixtures] == ["lookup_account", "search_transactions", "issue_refund"]
    # Replayed as an eval case: the refund answers from the recorded result, and the case passes.
    eval_run = drive_eval(services.eval_run_start(suite=suite, version=suite.prompt.versions.get(number=1), actor=members[Role.ADMIN]))
    assert eval_run.passed == 1
    assert login(members[Role.VIEWER]).post(url, {"suite": suite.pk, "name": "x"}).status_code == 403


def test_the_run_page_compare_and_progress_render(suite, members):
    for data in greeting_cases(2, 1):
        services.case_save(suite=suite, actor=members[Role.ADMIN], data=data)
    a = drive_eval(services.eval_run_start(suite=suite, version=suite.prompt.versions.get(number=1), actor=members[Role.ADMIN]))
    EvalCase.objects.filter(name="pass-1").update(checks=[{"type": "contains", "value": "nope"}])
    b = services.eval_run_start(suite=suite, version=suite.prompt.versions.get(number=2), actor=members[Role.ADMIN])
    client = login(members[Role.VIEWER])
    live = client.get(f"/t/{suite.tenant.slug}/evals/runs/{b.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 2s"' in live and "0/3" in live
    drive_eval(b)
    page = html.unescape(client.get(f"/t/{suite.tenant.slug}/evals/compare/?a={a.pk}&b={b.pk}").content.decode())
    assert "newly failing" in page and "pass-1" in page and "the output does not contain 'nope'" in page
    assert EvalRun.objects.get(pk=b.pk).regression  # 33 points below production's latest
