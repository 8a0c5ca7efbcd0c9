"""Eval fixtures: the runtime's agent (demo tools, grants, a scripted model), a prompt with two
versions, and a suite on them."""

from __future__ import annotations

import pytest

from agentops.evals.models import EvalSuite
from agentops.prompts.models import Prompt, PromptLabel, PromptVersion
from tests.runtime.conftest import _scripted, agent, demo_data, tier_generous  # noqa: F401 - fixtures

__all__ = ["_scripted", "agent", "demo_data", "tier_generous"]


@pytest.fixture
def prompt(agent):  # type: ignore[no-untyped-def]
    prompt = Prompt.objects.create(tenant=agent.tenant, name="support")
    for n in (1, 2):
        PromptVersion.objects.create(tenant=agent.tenant, prompt=prompt, number=n, system=f"You are a careful support agent (v{n}).",
                                     model="claude-sonnet-4-6", tools=list(agent.tools))
    PromptLabel.objects.create(tenant=agent.tenant, prompt=prompt, name="production", version=prompt.versions.get(number=1))
    PromptLabel.objects.create(tenant=agent.tenant, prompt=prompt, name="staging", version=prompt.versions.get(number=2))
    agent.prompt = prompt
    agent.save()
    return prompt


@pytest.fixture
def suite(prompt, agent):  # type: ignore[no-untyped-def]
    return EvalSuite.objects.create(tenant=agent.tenant, prompt=prompt, agent=agent, name="support-regressions", parallelism=2)
