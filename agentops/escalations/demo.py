"""Demo step: scripted runs that stop at an approval gate, so the operator inbox is never empty.

``run(ctx)`` (wired into ``agentops.demo.DEMO_STEPS`` by the demo command's owner) creates, once,
the ``refund-desk`` agent in Acme with its tool grants, then submits one run per scenario unless
one is already waiting: a refund over the approval limit, an e-mail to a customer (the grant
requires approval), an agent hand-off, and a small refund (irreversible tools are gated by the
tenant's policy). Running the demo again adds nothing while those are still pending.
"""

from __future__ import annotations

import time
from typing import Any

from agentops.demo.context import DemoContext
from agentops.escalations.models import Escalation, EscalationStatus
from agentops.toolbox.seed import seed_demo_data
from runs.models import Agent, Run, RunStatus, ToolGrant
from runs.services import RunRefused, agent_save, grant_save, run_submit
from tenants.models import Role, Tenant

TENANT = "acme"
AGENT_NAME = "refund-desk"
SCENARIOS = [
    ("refund_over_limit", "Customer ACC-1001 wants the annual charge back."),
    ("email_customer", "Let the customer know we received their refund request."),
    ("handoff", "Customer on ACC-1003 disputes a chargeback and wants a supervisor."),
    ("support_refund", "Customer ACC-1001 was charged twice this month; refund the duplicate."),
]
TOOLS = ["lookup_account", "search_transactions", "check_policy", "search_knowledge_base", "issue_refund", "send_email",
         "escalate_to_human"]
# tool → (requires_approval, allow, approval_over)
GRANTS: dict[str, tuple[bool, dict[str, Any], dict[str, Any]]] = {
    "lookup_account": (False, {}, {}),
    "search_transactions": (False, {}, {}),
    "check_policy": (False, {}, {}),
    "search_knowledge_base": (False, {}, {}),
    "issue_refund": (False, {"max_amount": "1000.00"}, {"amount": "100.00"}),
    "send_email": (True, {"recipient_domains": ["example.com", "example.org", "example.net"]}, {}),
}
WAITING = [RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.AWAITING_APPROVAL]


def ensure_agent(tenant: Tenant, actor: Any) -> Agent:
    """The demo agent and its grants, created through the services (so the audit log shows them)."""
    agent = Agent.objects.for_tenant(tenant).filter(name=AGENT_NAME).first()
    if agent is None:
        agent = agent_save(tenant=tenant, actor=actor, data={
            "name": AGENT_NAME,
            "description": "Customer-support agent for refunds and e-mails; big refunds and e-mails wait for an operator.",
            "system_prompt": "You are Acme's support agent. Check the account and charges before refunding; "
                             "ask a human when unsure.",
            "model": "claude-sonnet-4-6",
            "tools": TOOLS,
        })
    for tool, (requires_approval, allow, approval_over) in GRANTS.items():
        grant = ToolGrant.objects.for_tenant(tenant).filter(tool_name=tool, agent=agent, role="").first()
        if grant is None or (grant.requires_approval, grant.allow, grant.approval_over) != (requires_approval, allow, approval_over):
            grant_save(tenant=tenant, actor=actor, tool_name=tool, agent=agent, role="", requires_approval=requires_approval,
                       allow=allow, approval_over=approval_over)
    return agent


def run(ctx: DemoContext) -> None:
    tenant = ctx.tenants[TENANT]
    seed_demo_data(tenant)  # idempotent: the accounts and charges the scenarios refer to
    operator = ctx.users[TENANT][Role.OPERATOR]
    agent = ensure_agent(tenant, ctx.admin(TENANT))
    submitted: list[Run] = []
    for scenario, text in SCENARIOS:
        runs = Run.objects.for_tenant(tenant).filter(agent=agent, metadata__scenario=scenario)
        # Re-stock the inbox after an operator decided; a scenario that never gates runs once.
        if runs.filter(status__in=WAITING).exists() or runs.filter(escalations__isnull=True).exclude(status__in=WAITING).exists():
            continue
        try:
            submitted.append(run_submit(tenant=tenant, agent=agent, input=text, submitted_by=operator, role=Role.OPERATOR,
                                        metadata={"scenario": scenario, "demo": "escalations"}))
        except RunRefused as exc:
            ctx.say(f"escalations: {scenario} not submitted ({exc})")
    deadline = time.monotonic() + 30
    ids = [r.pk for r in submitted]
    while ids and time.monotonic() < deadline:
        if not Run.objects.for_tenant(tenant).filter(pk__in=ids, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).exists():
            break
        time.sleep(0.25)
    pending = Escalation.objects.for_tenant(tenant).filter(status=EscalationStatus.PENDING).count()
    ctx.say(f"escalations: {len(submitted)} gated run(s) submitted; {pending} pending in {tenant.slug}'s inbox "
            f"({ctx.base_url}/t/{tenant.slug}/escalations/, log in as {operator.username})")
