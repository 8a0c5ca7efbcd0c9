"""Demo step: an agent that avoids a refund path that failed the day before (the failure journal, issue 16).

``run(ctx)`` creates, once, the ``billing-desk`` agent in Acme, whose grant caps a refund at 500.00.
Yesterday (the journal's clock set back a day) a run for ACC-1002 tried to refund 975.00 in one call:
the grant refused it and the journal filed the refusal. Today's run for the same customer gets a
"known failures" note in its first message; the scripted model reads it and hands the case to a human
instead of repeating the call. Both runs are driven in this process (the backdated clock is this
process's), so no worker races them; running the demo again adds nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from agentops.demo.context import DemoContext
from agentops.harness.loop import drive_run
from agentops.memory import journal
from agentops.toolbox.seed import seed_demo_data
from runs.models import Agent, Run
from runs.services import agent_save, grant_save
from tenants.models import Role, Tenant

TENANT = "acme"
AGENT_NAME = "billing-desk"
SCENARIO = "refund_remembered"
SUBJECT = "ACC-1002"
INPUT = "Marcus Oyelaran (ACC-1002) cancelled in the first week: refund the annual plan and the onboarding session."
TOOLS = ["lookup_account", "issue_refund", "escalate_to_human"]


def ensure_agent(tenant: Tenant, actor: Any) -> Agent:
    agent = Agent.objects.for_tenant(tenant).filter(name=AGENT_NAME).first()
    if agent is None:
        agent = agent_save(
            tenant=tenant,
            actor=actor,
            data={
                "name": AGENT_NAME,
                "description": "Refunds within a 500.00 limit; remembers what failed before (failure journal).",
                "system_prompt": "You are Acme's billing agent. Refund what the customer is owed; ask a human when a refund cannot go through.",
                "model": "claude-sonnet-4-6",
                "tools": TOOLS,
            },
        )
    for tool in TOOLS:
        allow = {"max_amount": "500.00"} if tool == "issue_refund" else {}
        if not agent.grants.filter(tool_name=tool, role="").exists():
            grant_save(
                tenant=tenant,
                actor=actor,
                tool_name=tool,
                agent=agent,
                role="",
                requires_approval=False,
                allow=allow,
                approval_over={},
            )
    return agent


def _drive(tenant: Tenant, agent: Agent, actor: Any, day: str) -> Run:
    run = Run.objects.create(
        tenant=tenant,
        agent=agent,
        input=INPUT,
        submitted_by=actor,
        submitter_role=Role.OPERATOR,
        metadata={"scenario": SCENARIO, "subject": SUBJECT, "demo": "journal", "day": day},
    )
    drive_run(run.pk, worker_id="demo-journal")
    run.refresh_from_db()
    return run


def run(ctx: DemoContext) -> None:
    tenant = ctx.tenants[TENANT]
    seed_demo_data(tenant)
    operator = ctx.users[TENANT][Role.OPERATOR]
    agent = ensure_agent(tenant, ctx.admin(TENANT))
    done = Run.objects.for_tenant(tenant).filter(agent=agent, metadata__demo="journal")
    if done.exists():
        ctx.say(f"journal: already shown ({ctx.base_url}/t/{tenant.slug}/memory/journal/agents/{agent.pk}/)")
        return
    yesterday = timezone.now() - timedelta(days=1)
    with journal.clock_at(yesterday):
        first = _drive(tenant, agent, operator, "yesterday")
    Run.objects.for_tenant(tenant).filter(pk=first.pk).update(
        created_at=yesterday, started_at=yesterday, finished_at=yesterday + timedelta(seconds=2)
    )
    second = _drive(tenant, agent, operator, "today")
    took = [c.tool_name for c in second.tool_calls.order_by("id")]
    ctx.say(
        f"journal: yesterday's run {first.pk} had issue_refund refused; today's run {second.pk} read the note and took "
        f"{' → '.join(took)} ({second.status}) — {ctx.base_url}/t/{tenant.slug}/memory/journal/agents/{agent.pk}/"
    )
