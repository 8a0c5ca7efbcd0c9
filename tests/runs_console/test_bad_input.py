"""Junk sent to every runs console URL by an admin gets a 4xx or a redirect, never a 500."""

from __future__ import annotations

import pytest

from tests.url_inventory import tenant_routes

ROUTES = [r for r in tenant_routes() if (r.name or "").startswith(("list", "new", "detail", "cancel", "pause", "resume", "agent", "tenant_killswitch", "grant"))
          and r.callback.__module__ == "runs.views"]
JUNK = [{"x": "1"}, {"agent": "1", "input": "hi", "enabled": "2", "tool_name": "nope", "allow": "{", "routing": "["}, {"q": "é" * 300}]


def test_there_are_runs_console_routes():
    assert len(ROUTES) >= 12


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.route)
def test_junk_never_causes_a_500(route, agent, admin):
    for ident in ("1", str(agent.pk), "x", "99999999999999999999"):
        url = route.build(**{k: ("acme" if k == "slug" else ident) for k in route.converters})
        for body in JUNK:
            assert admin.get(url, body).status_code < 500, (url, body)
            assert admin.post(url, body).status_code < 500, (url, body)


DEEP = "[" * 1000 + "]" * 1000


@pytest.mark.parametrize("routing", ['{"complex_keywords": ["\\ud800"]}', '{"\\udfff": "x"}', '{"simple": ' + DEEP + "}",
                                     '{"complex_min_chars": NaN}', '{"complex_min_chars": 1e400}'])
def test_hostile_routing_json_rerenders_the_agent_form_with_400(routing, tenant, agent, admin):
    from runs.models import Agent
    from tests.runs_console.factories import runs_url
    from tests.runs_console.test_agents import _form

    assert admin.post(runs_url("agent_new"), _form(routing=routing)).status_code == 400
    assert admin.post(runs_url("agent_edit", agent_id=agent.pk), _form(name="support", routing=routing)).status_code == 400
    assert list(Agent.objects.values_list("name", flat=True)) == ["support"]
    agent.refresh_from_db()
    assert agent.routing in ({}, None)


@pytest.mark.parametrize("field,value", [
    ("allow", '{"domains": ["\\ud800.example"]}'), ("allow", '{"domains\\ud800": ["a.example"]}'),
    ("allow", '{"domains": ' + DEEP + "}"), ("approval_over", '{"amount": "\\ud800"}'),
])
def test_hostile_grant_json_rerenders_with_400(field, value, tenant, admin):
    from runs.models import ToolGrant
    from tests.runs_console.factories import runs_url

    body = {"tool_name": "fetch_url" if field == "allow" else "issue_refund", "agent": "", "role": "", "allow": "", "approval_over": ""}
    assert admin.post(runs_url("grants"), {**body, field: value}).status_code == 400
    assert not ToolGrant.objects.exists()
