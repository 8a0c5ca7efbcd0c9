from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from runs.models import Agent, RunStatus
from tenants.models import AuditEvent, Role
from tests.runs_console.factories import AgentFactory, RunFactory, runs_url


def _form(**overrides):  # type: ignore[no-untyped-def]
    data = {
        "name": "triage", "description": "First line", "system_prompt": "Be brief.", "model": "claude-sonnet-4-5",
        "routing": "", "fallback_model": "", "max_tokens": "1024", "tools": ["search_knowledge_base", "issue_refund"],
        "iteration_cap": "25", "repetition_threshold": "3", "wall_clock_limit_s": "900", "task_cost_cap": "1.50",
    }
    data.update(overrides)
    return data


def test_admin_creates_an_agent_with_an_audit_row(tenant, admin):
    routing = {"simple": "claude-haiku-4-5", "complex": "claude-opus-4-5", "complex_min_chars": 400, "complex_keywords": ["refund"]}
    resp = admin.post(runs_url("agent_new"), _form(routing=json.dumps(routing)))
    agent = Agent.objects.get(tenant=tenant, name="triage")
    assert resp.status_code == 302 and resp["Location"] == runs_url("agent_edit", agent_id=agent.pk)
    assert agent.tools == ["search_knowledge_base", "issue_refund"] and agent.routing == routing
    assert agent.task_cost_cap == Decimal("1.50") and agent.runs_disabled is False
    assert AuditEvent.objects.filter(tenant=tenant, action="agent.create").count() == 1


def test_admin_edits_an_agent(tenant, agent, admin):
    resp = admin.post(runs_url("agent_edit", agent_id=agent.pk), _form(name="support", iteration_cap="7", task_cost_cap="", tools=[]))
    assert resp.status_code == 302
    agent.refresh_from_db()
    assert agent.iteration_cap == 7 and agent.task_cost_cap is None and agent.tools == []
    event = AuditEvent.objects.get(tenant=tenant, action="agent.update")
    assert event.after["iteration_cap"] == 7


def test_the_edit_form_shows_current_values(agent, admin):
    html = admin.get(runs_url("agent_edit", agent_id=agent.pk)).content.decode()
    assert 'value="support"' in html and "You are a careful support agent." in html
    assert 'value="issue_refund" checked' in html or 'checked' in html.split('value="issue_refund"')[1][:80]


def test_invalid_agents_rerender_with_400(tenant, agent, admin):
    bad = [
        {"routing": "{not json"},
        {"routing": "[1, 2]"},
        {"routing": json.dumps({"simple": 5})},
        {"routing": json.dumps({"complex_min_chars": -1})},
        {"routing": json.dumps({"bogus": "x"})},
        {"tools": ["search_knowledge_base", "rm_rf"]},
        {"iteration_cap": "0"},
        {"iteration_cap": "-5"},
        {"max_tokens": "999999"},
        {"task_cost_cap": "-1"},
        {"task_cost_cap": "abc"},
        {"task_cost_cap": "NaN"},
        {"model": "claude; drop table"},
        {"model": ""},
        {"name": "support"},  # duplicate of the existing agent
        {"name": ""},
        {"system_prompt": "x" * 100_001},
    ]
    for overrides in bad:
        resp = admin.post(runs_url("agent_new"), _form(**overrides))
        assert resp.status_code == 400, overrides
        assert b"Create agent" in resp.content
    assert not Agent.objects.filter(name="triage").exists()
    assert admin.post(runs_url("agent_new"), _form(name="x" * 1024 * 1024)).status_code in (400, 413)
    assert admin.post(runs_url("agent_new"), _form(description="a\x00b")).status_code == 400


def test_tier_allowed_models_are_enforced(tenant, admin):
    tenant.tier.allowed_models = ["claude-haiku-4-5"]
    tenant.tier.save()
    assert admin.post(runs_url("agent_new"), _form(model="claude-opus-4-5")).status_code == 400
    assert admin.post(runs_url("agent_new"), _form(model="claude-haiku-4-5")).status_code == 302


def test_prompt_editors_read_but_cannot_write(agent, members, client_for):
    client = client_for(members[Role.PROMPT_EDITOR])
    agents_page = client.get(runs_url("agents"))
    assert agents_page.status_code == 200
    assert [i["label"] for i in agents_page.context["nav_items"]] == ["Home", "Runs", "Prompts", "Evals", "Agents", "Memory"]
    page = client.get(runs_url("agent_edit", agent_id=agent.pk))
    assert page.status_code == 200 and b"disabled" in page.content and b"Save agent" not in page.content
    assert client.post(runs_url("agent_edit", agent_id=agent.pk), _form(name="hijack")).status_code == 403
    assert client.get(runs_url("agent_new")).status_code == 403
    agent.refresh_from_db()
    assert agent.name == "support"


def test_agents_page_lists_kill_switch_model_tools_and_caps(tenant, agent, admin):
    AgentFactory(tenant=tenant, name="billing", runs_disabled=True, task_cost_cap=Decimal("2"))
    html = admin.get(runs_url("agents")).content.decode()
    assert "support" in html and "billing" in html and "issue_refund" in html and "claude-sonnet-4-5" in html
    assert "$2.00 / task" in html and 'id="tenant-killswitch"' in html


def test_agent_kill_switch_pauses_queued_runs_and_is_audited(tenant, agent, admin):
    run = RunFactory(agent=agent, status=RunStatus.QUEUED, outcome="")
    assert admin.post(runs_url("agent_killswitch", agent_id=agent.pk), {"enabled": "1"}).status_code == 302
    agent.refresh_from_db()
    run.refresh_from_db()
    assert agent.runs_disabled and run.status == RunStatus.PAUSED and run.outcome == "kill_switch"
    assert AuditEvent.objects.filter(tenant=tenant, action="killswitch.on").exists()
    assert admin.post(runs_url("agent_killswitch", agent_id=agent.pk), {"enabled": "maybe"}).status_code == 400


def test_agent_ids_of_other_tenants_or_garbage_are_404(agent, other_tenant, admin):
    foreign = AgentFactory(tenant=other_tenant)
    for ident in (foreign.pk, "abc", "0", "9" * 25):
        assert admin.get(f"/t/acme/agents/{ident}/").status_code == 404
        assert admin.post(f"/t/acme/agents/{ident}/", _form()).status_code == 404
        assert admin.post(f"/t/acme/agents/{ident}/kill-switch/", {"enabled": "1"}).status_code == 404
    foreign.refresh_from_db()
    assert not foreign.runs_disabled


def test_admin_sets_what_each_evaluator_flag_does(tenant, agent, admin):
    resp = admin.post(runs_url("agent_edit", agent_id=agent.pk), _form(name="support", policy_unsupported_claim="fail", policy_injection="review"))
    assert resp.status_code == 302
    agent.refresh_from_db()
    assert agent.flag_policy == {"unsupported_claim": "fail", "injection": "review"}
    assert AuditEvent.objects.get(tenant=tenant, action="agent.update").after["flag_policy"] == agent.flag_policy
    page = admin.get(runs_url("agent_edit", agent_id=agent.pk)).content.decode()
    assert 'id="flag-policy"' in page and '<option value="fail" selected>fail</option>' in page
    assert "default (hold)" in page  # injection's default, shown for a flag left blank
    # Back to the defaults: a blank choice is not stored.
    admin.post(runs_url("agent_edit", agent_id=agent.pk), _form(name="support"))
    agent.refresh_from_db()
    assert agent.flag_policy == {}


def test_a_bad_flag_policy_is_a_400_and_never_saved(agent, admin):
    resp = admin.post(runs_url("agent_edit", agent_id=agent.pk), _form(name="support", policy_pii="explode"))
    assert resp.status_code == 400 and b"explode" in resp.content
    agent.refresh_from_db()
    assert agent.flag_policy == {}
    agent.flag_policy = {"no_such_flag": "fail"}
    with pytest.raises(ValidationError, match="Unknown flag"):
        agent.full_clean()


def test_admin_sets_the_prompt_cache_lifetime(tenant, agent, admin):
    assert agent.cache_ttl == "5m"
    resp = admin.post(runs_url("agent_edit", agent_id=agent.pk), _form(name="support", cache_ttl="1h"))
    assert resp.status_code == 302
    agent.refresh_from_db()
    assert agent.cache_ttl == "1h"
    assert AuditEvent.objects.get(tenant=tenant, action="agent.update").after["cache_ttl"] == "1h"
    assert admin.post(runs_url("agent_edit", agent_id=agent.pk), _form(name="support", cache_ttl="1d")).status_code == 400
    agent.refresh_from_db()
    assert agent.cache_ttl == "1h"
