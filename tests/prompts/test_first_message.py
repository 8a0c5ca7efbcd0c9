"""A run submitted with variables gets its prompt version's first-message template, rendered, as its input."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from agentops.prompts import services
from runs.models import Agent, Run
from tenants.models import Role
from tenants.services import api_key_create
from tests.prompts.conftest import new_version

TEMPLATE = "Hello, I am {{customer}} and my order {{ order_id }} is late."


@pytest.fixture
def agent(tenant, members, prompt):  # type: ignore[no-untyped-def]
    editor = members[Role.PROMPT_EDITOR]
    version = new_version(tenant, editor, prompt, first_message=TEMPLATE, variables=["customer", "order_id"])
    services.label_move(tenant=tenant, actor=editor, prompt=prompt, label_name="staging", version=version)
    return Agent.objects.create(tenant=tenant, name="support", system_prompt="inline", prompt=prompt, prompt_label="staging")


@pytest.fixture
def api(tenant):  # type: ignore[no-untyped-def]
    raw = api_key_create(tenant=tenant, actor=None, name="app", scopes=["runs"])[1]
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def _submit(api, body):  # type: ignore[no-untyped-def]
    return api.post("/api/v1/runs", data=json.dumps(body), content_type="application/json")


def test_the_api_renders_the_template_and_pins_the_version(tenant, members, prompt, agent, api):  # type: ignore[no-untyped-def]
    response = _submit(api, {"agent": "support", "variables": {"customer": "Ada", "order_id": "A-17"}})
    assert response.status_code == 201, response.content
    run = Run.objects.get(pk=response.json()["id"])
    assert run.input == "Hello, I am Ada and my order A-17 is late."
    version = prompt.versions.get(number=1)
    assert (run.prompt_version_id, run.prompt_version_number, run.prompt_sha256) == (version.pk, 1, version.sha256)
    # A label moved after submission does not change the version the rendered message came from.
    v2 = new_version(tenant, members[Role.PROMPT_EDITOR], prompt, first_message="Hi {{customer}}", variables=["customer"])
    services.label_move(tenant=tenant, actor=members[Role.PROMPT_EDITOR], prompt=prompt, label_name="staging", version=v2)
    assert agent.resolve_prompt(Run.objects.get(pk=run.pk)).version_id == version.pk


@pytest.mark.parametrize("variables, listed", [
    ({"customer": "Ada"}, "missing: order_id"),
    ({"customer": "Ada", "order_id": "1", "coupon": "X", "aa": "y"}, "not declared: aa, coupon"),
    ({}, "missing: customer, order_id"),
])
def test_missing_or_extra_variables_are_listed_in_a_400_and_nothing_is_saved(agent, api, variables, listed):  # type: ignore[no-untyped-def]
    response = _submit(api, {"agent": "support", "variables": variables})
    assert response.status_code == 400 and listed in response.json()["error"]["message"], response.content
    assert not Run.objects.exists()


def test_variables_for_an_agent_without_a_template_or_beside_an_input_are_refused(tenant, agent, api):  # type: ignore[no-untyped-def]
    Agent.objects.create(tenant=tenant, name="plain", system_prompt="inline")
    response = _submit(api, {"agent": "plain", "variables": {"customer": "Ada"}})
    assert response.status_code == 400 and "no first-message template" in response.json()["error"]["message"]
    response = _submit(api, {"agent": "support", "input": "hi", "variables": {"customer": "Ada", "order_id": "1"}})
    assert response.status_code == 400 and "either input or variables" in response.json()["error"]["message"]
    assert _submit(api, {"agent": "support", "variables": {"customer": 3, "order_id": "1"}}).status_code == 400
    assert not Run.objects.exists()
    # Without variables the input is used as it is (the template is optional).
    assert _submit(api, {"agent": "support", "input": "Where is my parcel?"}).status_code == 201


def test_the_console_run_form_renders_the_template(tenant, members, agent, client_for):  # type: ignore[no-untyped-def]
    client = client_for(members[Role.OPERATOR])
    url = f"/t/{tenant.slug}/runs/new/"
    bad = client.post(url, {"agent": agent.pk, "input": "", "variables": '{"customer": "Ada"}'})
    assert bad.status_code == 400 and b"missing: order_id" in bad.content and not Run.objects.exists()
    assert client.post(url, {"agent": agent.pk, "input": "", "variables": "[1]"}).status_code == 400
    assert client.post(url, {"agent": agent.pk, "input": "", "variables": ""}).status_code == 400  # nothing to do
    ok = client.post(url, {"agent": agent.pk, "input": "", "variables": '{"customer": "Ada", "order_id": "A-17"}'})
    assert ok.status_code == 302
    assert Run.objects.get().input == "Hello, I am Ada and my order A-17 is late."


def test_the_runs_list_leaves_playground_runs_out_unless_asked_and_marks_them(tenant, members, agent, client_for):  # type: ignore[no-untyped-def]
    production = Run.objects.create(tenant=tenant, agent=agent, input="real customer")
    trial = Run.objects.create(tenant=tenant, agent=agent, input="try-it input", playground=True)
    client = client_for(members[Role.VIEWER])
    url = f"/t/{tenant.slug}/runs/"

    def listed(query: str) -> tuple[set[int], str]:
        response = client.get(url + query)
        assert response.status_code == 200
        html = response.content.decode()
        return {r.pk for r in (production, trial) if f'data-run="{r.pk}"' in html}, html

    shown, html = listed("")
    assert shown == {production.pk} and "playground runs (a prompt's try-it panel) are not listed" in html
    shown, html = listed("?kind=playground")
    assert shown == {trial.pk} and '<span class="flag" title="A try-it run' in html
    assert listed("?kind=all")[0] == {production.pk, trial.pk}
    assert client.get(url + "?kind=bogus").status_code == 400
