"""Fixtures for escalations: an agent whose refund, e-mail and hand-off calls stop at the gate."""

from __future__ import annotations

from decimal import Decimal

import pytest

from agentops.escalations.models import Escalation
from agentops.harness.loop import drive_run
from runs.models import Agent, Run, ToolGrant
from tenants.models import ApiScope, Role
from tenants.services import api_key_create

TOOLS = ["lookup_account", "search_transactions", "check_policy", "search_knowledge_base", "issue_refund", "send_email",
         "escalate_to_human"]


@pytest.fixture(autouse=True)
def _scripted(settings):  # type: ignore[no-untyped-def]
    settings.ANTHROPIC_API_KEY = ""
    settings.AGENTOPS_SCENARIO = ""
    settings.RUN_LEASE_SECONDS = 5
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.ESCALATION_EXPIRY_POLICY = "reject"


@pytest.fixture
def prices(db):  # type: ignore[no-untyped-def]
    """Transactional tests flush the prices the data migration seeded; put them back."""
    import importlib

    from django.apps import apps

    importlib.import_module("budgets.migrations.0002_seed_model_prices").seed(apps, None)


@pytest.fixture
def agent(tenant, prices):  # type: ignore[no-untyped-def]
    from agentops.toolbox.seed import seed_demo_data

    tier = tenant.tier
    tier.task_cost_cap = tier.user_day_cost_cap = tier.user_month_cost_cap = tier.tenant_month_cost_cap = Decimal("1000")
    tier.max_concurrent_runs = 100
    tier.save()
    seed_demo_data(tenant)
    agent = Agent.objects.create(tenant=tenant, name="refund-desk", system_prompt="You are a careful support agent.",
                                 model="claude-sonnet-4-6", tools=TOOLS, max_tokens=512)
    for name in TOOLS:
        if name == "escalate_to_human":
            continue
        ToolGrant.objects.create(
            tenant=tenant, tool_name=name, agent=agent,
            requires_approval=name == "send_email",
            approval_over={"amount": "100.00"} if name == "issue_refund" else {},
            allow={"max_amount": "1000.00"} if name == "issue_refund" else {},
        )
    return agent


def make_run(agent: Agent, scenario: str, *, text: str = "Help the customer.") -> Run:
    return Run.objects.create(tenant=agent.tenant, agent=agent, input=text, submitter_role=Role.OPERATOR,
                              metadata={"scenario": scenario})


def drive(run: Run) -> Run:
    drive_run(run.pk, worker_id="test-worker")
    run.refresh_from_db()
    return run


def gated(agent: Agent, scenario: str = "email_customer") -> Escalation:
    """A run driven in-process until it waits for a human; its pending escalation."""
    run = drive(make_run(agent, scenario))
    assert run.status == "awaiting_approval", (run.status, run.outcome, run.error_message)
    return Escalation.objects.get(run=run, status="pending")


def tool_results(run: Run) -> list[dict]:
    return [b for m in run.messages.filter(role="user").order_by("seq") for b in m.content if b.get("type") == "tool_result"]


def assert_log_consistent(run: Run) -> None:
    messages = list(run.messages.order_by("seq"))
    for i, m in enumerate(messages):
        uses = [b["id"] for b in m.content if m.role == "assistant" and b.get("type") == "tool_use"]
        if uses:
            assert i + 1 < len(messages), f"tool_use {uses} has no tool_result turn"
            results = [b["tool_use_id"] for b in messages[i + 1].content if b.get("type") == "tool_result"]
            assert sorted(results) == sorted(uses)


@pytest.fixture
def escalations_key(tenant, admin_user):  # type: ignore[no-untyped-def]
    """A raw API key of ``tenant`` with the escalations scope."""
    _, raw = api_key_create(tenant=tenant, actor=admin_user, name="ops bot", scopes=[ApiScope.ESCALATIONS], acts_as_role=Role.OPERATOR)
    return raw


@pytest.fixture
def runs_only_key(tenant, admin_user):  # type: ignore[no-untyped-def]
    _, raw = api_key_create(tenant=tenant, actor=admin_user, name="runs bot", scopes=[ApiScope.RUNS], acts_as_role=Role.OPERATOR)
    return raw

