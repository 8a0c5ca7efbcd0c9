"""Memory fixtures: the runtime's agent with ``remember`` granted, and a transport recording requests."""

from __future__ import annotations

import pytest

from agentops.llm import gateway
from runs.models import Run, ToolGrant
from tenants.models import Role
from tests.llm.helpers import RecordingTransport
from tests.runtime.conftest import _scripted, agent, demo_data, tier_generous  # noqa: F401 - fixtures


@pytest.fixture
def recording(monkeypatch):  # type: ignore[no-untyped-def]
    transport = RecordingTransport(redis_url="")
    monkeypatch.setattr(gateway, "ScriptedTransport", lambda: transport)
    gateway.reset_clients()
    yield transport
    gateway.reset_clients()


@pytest.fixture
def memory_agent(agent):  # type: ignore[no-untyped-def]  # noqa: F811
    agent.tools = [*agent.tools, "remember"]
    agent.save()
    ToolGrant.objects.create(tenant=agent.tenant, tool_name="remember", allow={"max_facts": 5})
    return agent


def subject_run(
    owner, scenario: str, subject: str | None, text: str = "Hi, it's me again about my plan renewal."
) -> Run:  # type: ignore[no-untyped-def]
    metadata = {"scenario": scenario} | ({"subject": subject} if subject is not None else {})
    return Run.objects.create(
        tenant=owner.tenant, agent=owner, input=text, submitter_role=Role.OPERATOR, metadata=metadata
    )
