"""Agent.resolve_prompt(run): the label is read once and the version pinned on the run row."""

from __future__ import annotations

from agentops.prompts import services
from runs.models import Agent, Run
from tenants.models import Role
from tests.prompts.conftest import new_version


def test_a_run_pins_the_label_once_and_keeps_it(tenant, members, prompt, django_assert_num_queries):  # type: ignore[no-untyped-def]
    editor = members[Role.PROMPT_EDITOR]
    v1 = new_version(tenant, editor, prompt)
    v2 = new_version(tenant, editor, prompt, system="Second.", model="claude-sonnet-4-6")
    services.label_move(tenant=tenant, actor=editor, prompt=prompt, label_name="staging", version=v1)
    agent = Agent.objects.create(tenant=tenant, name="a", system_prompt="inline", prompt=prompt, prompt_label="staging")
    assert Agent.objects.create(tenant=tenant, name="b", system_prompt="inline").resolve_prompt().system == "inline"
    run = Run.objects.create(tenant=tenant, agent=agent, input="x")
    first = agent.resolve_prompt(run)
    assert (first.version_id, first.version_number, first.sha256, first.model) == (v1.pk, 1, v1.sha256, "claude-haiku-4-5")
    services.label_move(tenant=tenant, actor=editor, prompt=prompt, label_name="staging", version=v2)
    with django_assert_num_queries(0):  # a pinned version is immutable: read once per process
        assert agent.resolve_prompt(run).version_id == v1.pk
    reloaded = Run.objects.get(pk=run.pk)  # as a worker after a restart finds it
    assert (reloaded.prompt_version_id, reloaded.prompt_version_number, reloaded.prompt_sha256) == (v1.pk, 1, v1.sha256)
    assert agent.resolve_prompt(reloaded).system == v1.system
    assert agent.resolve_prompt(Run.objects.create(tenant=tenant, agent=agent, input="y")).version_id == v2.pk


def test_an_empty_label_falls_back_to_the_inline_text(tenant, prompt):  # type: ignore[no-untyped-def]
    agent = Agent.objects.create(tenant=tenant, name="a", system_prompt="inline", prompt=prompt)
    run = Run.objects.create(tenant=tenant, agent=agent, input="x")
    assert agent.resolve_prompt(run).system == "inline" and agent.resolve_prompt(run).version_id is None
    assert Run.objects.get(pk=run.pk).prompt_version_id is None


def test_the_run_page_shows_the_version_number_and_hash_linked(tenant, members, prompt, client_for):  # type: ignore[no-untyped-def]
    v1 = new_version(tenant, members[Role.PROMPT_EDITOR], prompt)
    agent = Agent.objects.create(tenant=tenant, name="a", system_prompt="inline", prompt=prompt)
    run = Run.objects.create(tenant=tenant, agent=agent, input="x", prompt_version_id=v1.pk, prompt_version_number=1, prompt_sha256=v1.sha256)
    page = client_for(members[Role.VIEWER]).get(f"/t/acme/runs/{run.pk}/").content.decode()
    assert f'href="/t/acme/prompts/_version/{v1.pk}/"' in page and f"v1 · {v1.sha256[:12]}" in page
    version_page = client_for(members[Role.VIEWER]).get(f"/t/acme/prompts/_version/{v1.pk}/")
    assert version_page.status_code == 200 and version_page.context["version"] == v1
