"""The console pages: who may do what, the diff, live checks, the gate's refusal and the try-it panel."""

from __future__ import annotations

import pytest

from agentops.prompts import services
from agentops.prompts.models import LabelMove, PromptVersion
from runs.models import Agent, Run
from tenants.models import Role
from tests.prompts.conftest import new_version

URL = "/t/acme/prompts/"


@pytest.fixture
def two(tenant, members, prompt):  # type: ignore[no-untyped-def]
    editor = members[Role.PROMPT_EDITOR]
    v1 = new_version(tenant, editor, prompt, system="Line one.\nLine two.\nLine three.")
    v2 = new_version(tenant, editor, prompt, system="Line one.\nLine 2.\nLine three.\nLine four.", model="claude-sonnet-4-6")
    return v1, v2


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.FINANCE, Role.VIEWER, Role.PROMPT_EDITOR, Role.ADMIN])
def test_every_role_reads_the_pages(role, members, client_for, two):  # type: ignore[no-untyped-def]
    client = client_for(members[role])
    for path in ("", "support/", "support/v/1/", "support/diff/", "support/labels/production/", "support/v/2/try/",
                 f"_version/{two[1].pk}/"):
        resp = client.get(URL + path)
        assert resp.status_code == 200, (role, path)
    assert "Prompts" in [i["label"] for i in resp.context["nav_items"]]


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.FINANCE, Role.VIEWER])
def test_readers_cannot_write(role, members, client_for, two):  # type: ignore[no-untyped-def]
    client = client_for(members[role])
    assert client.get(URL + "support/v/1/new/").status_code == 403
    assert client.post(URL + "support/v/1/new/", {"system": "x", "model": "claude-haiku-4-5"}).status_code == 403
    assert client.post(URL + "support/labels/staging/", {"version": 1}).status_code == 403
    assert not LabelMove.objects.exists() and PromptVersion.objects.count() == 2


def test_the_diff_shows_exactly_the_changed_lines_and_fields(members, client_for, two):  # type: ignore[no-untyped-def]
    resp = client_for(members[Role.VIEWER]).get(URL + "support/diff/", {"a": 1, "b": 2, "view": "unified"})
    fields = {f.name: f for f in resp.context["fields"]}
    assert {n for n, f in fields.items() if f.changed} == {"system", "model"}
    assert [line for line in fields["system"].unified if line[:1] in "+-" and line[:3] not in ("---", "+++")] == [
        "-Line two.", "+Line 2.", "+Line four."]
    assert fields["model"].unified[-2:] == ["-claude-haiku-4-5", "+claude-sonnet-4-6"]
    split = client_for(members[Role.VIEWER]).get(URL + "support/diff/", {"a": 1, "b": 2})
    rows = [(r.tag, r.left, r.right) for r in {f.name: f for f in split.context["fields"]}["system"].rows]
    assert rows == [("equal", "Line one.", "Line one."), ("replace", "Line two.", "Line 2."), ("equal", "Line three.", "Line three."),
                    ("insert", "", "Line four.")]
    assert client_for(members[Role.VIEWER]).get(URL + "support/diff/", {"a": 9}).status_code == 400


def test_a_new_version_from_this_one_saves_and_bad_input_saves_nothing(members, client_for, two):  # type: ignore[no-untyped-def]
    client = client_for(members[Role.PROMPT_EDITOR])
    form = {"system": "Hello {{name}}", "model": "claude-haiku-4-5", "variables": "", "params": "{}", "tools": "", "changelog": "x"}
    resp = client.post(URL + "support/v/2/new/", form)
    assert resp.status_code == 400 and b"Undeclared variables: name" in resp.content
    for bad in ({"system": "a\x00b"}, {"model": "gpt-4"}, {"tools": "issue_refund"}, {"params": "{nope"}, {"system": "x" * 100_001}):
        assert client.post(URL + "support/v/2/new/", {**form, "variables": "name", **bad}).status_code == 400, bad
    assert PromptVersion.objects.count() == 2
    resp = client.post(URL + "support/v/2/new/", {**form, "variables": "name"})
    assert resp.status_code == 302 and PromptVersion.objects.get(number=3).first_message == ""


def test_live_checks_list_problems_and_warnings(members, client_for, two):  # type: ignore[no-untyped-def]
    client = client_for(members[Role.PROMPT_EDITOR])
    resp = client.post(URL + "support/check/", {"system": "Hi {{who}}", "model": "claude-nope-1", "variables": "who, unused", "tools": "fetch_url"},
                       HTTP_HX_REQUEST="true")
    assert resp.status_code == 200
    text = resp.content.decode()
    assert "Unknown model: claude-nope-1" in text and "Not granted to this tenant: fetch_url" in text and "unused" in text
    assert "Undeclared" not in text


def test_an_editors_override_is_403_and_the_gate_refusal_lists_failing_cases(members, client_for, two, evals):  # type: ignore[no-untyped-def]
    v1, v2 = two
    evals.set(v1, "0.6", failing=("tone", "refund-limit"), critical=("refund-limit",))
    editor = client_for(members[Role.PROMPT_EDITOR])
    resp = editor.post(URL + "support/labels/production/", {"version": 1, "reason": "ship it"})
    assert resp.status_code == 409 and b"refund-limit" in resp.content and b"critical" in resp.content
    assert editor.post(URL + "support/labels/production/", {"version": 1, "reason": "ship it", "override": "on"}).status_code == 403
    admin = client_for(members[Role.ADMIN])
    assert admin.post(URL + "support/labels/production/", {"version": 1, "override": "on"}).status_code == 409  # no reason
    assert admin.post(URL + "support/labels/production/", {"version": 1, "override": "on", "reason": "hotfix"}).status_code == 302
    move = LabelMove.objects.get()
    assert move.override and move.reason == "hotfix"
    assert b"override" in admin.get(URL + "support/labels/production/").content


def test_rollback_from_the_label_page(members, client_for, two, evals):  # type: ignore[no-untyped-def]
    v1, v2 = two
    evals.set(v1, "0.9")
    evals.set(v2, "0.9")
    editor = client_for(members[Role.PROMPT_EDITOR])
    for n in (1, 2):
        assert editor.post(URL + "support/labels/production/", {"version": n}).status_code == 302
    assert editor.post(URL + "support/labels/production/rollback/", {"reason": ""}).status_code == 400
    assert editor.post(URL + "support/labels/production/rollback/", {"reason": "v2 is rude"}).status_code == 302
    assert LabelMove.objects.order_by("-at", "-id").first().rollback


def test_the_try_it_panel_starts_playground_runs_beside_production(tenant, members, client_for, two, evals):  # type: ignore[no-untyped-def]
    v1, v2 = two
    evals.set(v1, "0.9")
    services.label_move(tenant=tenant, actor=members[Role.ADMIN], membership=members[Role.ADMIN].memberships.get(), prompt=v1.prompt,
                        label_name="production", version=v1)
    agent = Agent.objects.create(tenant=tenant, name="helper", system_prompt="inline", prompt=v1.prompt)
    client = client_for(members[Role.PROMPT_EDITOR])
    resp = client.post(URL + "support/v/2/try/", {"agent": agent.pk, "input": "Hello there"})
    assert resp.status_code == 302
    runs = {r.prompt_version_id: r for r in Run.objects.filter(playground=True)}
    assert set(runs) == {v1.pk, v2.pk}
    assert runs[v2.pk].prompt_sha256 == v2.sha256 and runs[v2.pk].metadata["playground"]["beside_run"] == runs[v1.pk].pk
    page = client.get(URL + "support/v/2/try/")
    assert page.context["pairs"][0].candidate == runs[v2.pk] and page.context["pairs"][0].production == runs[v1.pk]
    assert client_for(members[Role.VIEWER]).post(URL + "support/v/2/try/", {"agent": agent.pk, "input": "x"}).status_code == 403


def test_an_admin_points_an_agent_at_a_prompt_and_label(tenant, other_tenant, members, client_for, two):  # type: ignore[no-untyped-def]
    from tests.runs_console.test_agents import _form

    theirs = services.prompt_create(tenant=other_tenant, actor=None, name="theirs")
    admin = client_for(members[Role.ADMIN])
    assert admin.post("/t/acme/agents/new/", _form(prompt_id=str(theirs.pk))).status_code == 400
    assert admin.post("/t/acme/agents/new/", _form(prompt_id=str(two[0].prompt_id), prompt_label="has space")).status_code == 400
    assert admin.post("/t/acme/agents/new/", _form(prompt_id=str(two[0].prompt_id), prompt_label="staging")).status_code == 302
    agent = Agent.objects.get(name="triage")
    assert (agent.prompt_id, agent.prompt_label) == (two[0].prompt_id, "staging")


def test_finance_sees_spend_by_prompt_version_named(tenant, two):  # type: ignore[no-untyped-def]
    from budgets.selectors import _labels

    assert _labels("prompt_version", {two[1].pk, 0}) == {two[1].pk: "support v2", 0: "(inline prompt)"}
