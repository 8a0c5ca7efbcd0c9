"""Fixtures for the runtime: an agent with the demo toolset, grants, and a scripted model."""

from __future__ import annotations

from decimal import Decimal

import pytest

from runs.models import Agent, Run, ToolGrant
from tenants.models import Role

ALL_TOOLS = [
    "search_knowledge_base", "lookup_account", "search_transactions", "check_policy",
    "issue_refund", "send_email", "fetch_url", "escalate_to_human",
]


@pytest.fixture(autouse=True)
def _scripted(settings):  # type: ignore[no-untyped-def]
    settings.ANTHROPIC_API_KEY = ""
    settings.AGENTOPS_SCENARIO = ""
    settings.RUN_LEASE_SECONDS = 5
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def tier_generous(tenant):  # type: ignore[no-untyped-def]
    tier = tenant.tier
    tier.task_cost_cap = tier.user_day_cost_cap = tier.user_month_cost_cap = tier.tenant_month_cost_cap = Decimal("1000")
    tier.max_concurrent_runs = 100
    tier.save()
    return tier


@pytest.fixture
def demo_data(tenant):  # type: ignore[no-untyped-def]
    from agentops.toolbox.seed import seed_demo_data

    seed_demo_data(tenant)
    return tenant


@pytest.fixture
def agent(tenant, tier_generous, demo_data):  # type: ignore[no-untyped-def]
    tenant.gate_irreversible_tools = False
    tenant.save()
    agent = Agent.objects.create(
        tenant=tenant, name="support", system_prompt="You are a careful support agent.", model="claude-sonnet-4-6",
        fallback_model="claude-haiku-4-5", tools=ALL_TOOLS, max_tokens=512,
    )
    for name in ALL_TOOLS:
        allow = {"domains": ["docs.example.com"]} if name == "fetch_url" else {}
        ToolGrant.objects.create(tenant=tenant, tool_name=name, allow=allow)
    return agent


def make_run(agent, scenario: str, *, user=None, role: str = Role.OPERATOR, text: str = "Help the customer.") -> Run:  # type: ignore[no-untyped-def]
    return Run.objects.create(tenant=agent.tenant, agent=agent, input=text, submitted_by=user, submitter_role=role, metadata={"scenario": scenario})


def assert_log_consistent(run: Run) -> None:
    """Every tool_use has exactly one tool_result, in the very next user turn."""
    messages = list(run.messages.order_by("seq"))
    for i, m in enumerate(messages):
        if m.role != "assistant":
            continue
        uses = [b["id"] for b in m.content if b.get("type") == "tool_use"]
        if not uses:
            continue
        assert i + 1 < len(messages), f"tool_use {uses} at seq {m.seq} has no following tool_result turn"
        nxt = messages[i + 1]
        results = [b["tool_use_id"] for b in nxt.content if b.get("type") == "tool_result"]
        assert sorted(results) == sorted(uses), (m.seq, uses, results)
