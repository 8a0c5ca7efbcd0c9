"""Memory fixtures: the runtime's agent with ``remember`` granted, a transport recording requests,
and a fresh failure-journal cache per test."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from django.utils import timezone

from agentops.memory import facts, journal
from agentops.memory.models import Fact
from runs.models import Run, ToolGrant
from tenants.models import Role
from tests.prompts.test_sampling import recording  # noqa: F401 - fixture: the scripted API, recording request bodies
from tests.runtime.conftest import _scripted, agent, demo_data, tier_generous  # noqa: F401 - fixtures


@pytest.fixture(autouse=True)
def _fresh_journal_cache():  # type: ignore[no-untyped-def]
    journal.reset_cache()
    yield
    journal.reset_cache()


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


def note(
    tenant_id: int,
    subject: str,
    text: str,
    *,
    now: datetime | None = None,
    source: str = "operator",
    **extra: Any,
) -> Fact:
    """A fact written as write_fact writes it, with no source run (the tests' shorthand)."""
    return facts.write_fact(
        tenant_id=tenant_id,
        subject=subject,
        text=text,
        source=source,
        run_id=None,
        seq=None,
        agent_id=None,
        now=now or timezone.now(),
        **extra,
    )
