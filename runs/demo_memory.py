"""Demo step for memory (issue 16): a returning customer.

Run 1 (scenario ``remember_customer``) learns something about ACC-1001 and saves it with the
``remember`` tool; run 2 for the same subject (``returning_customer``) starts with a "Memory about
ACC-1001" block in its context and uses it. The concierge agent's grant caps it at three facts a run.
Idempotent: a run of the batch that exists is not submitted again.
"""

from __future__ import annotations

from typing import Any

from runs.demo import wait_settled
from runs.models import Agent, Run, ToolGrant
from runs.services import run_submit

BATCH = "demo-memory-v1"
SUBJECT = "ACC-1001"
PROMPT = (
    "You are Acme's customer concierge. When you learn something about the customer worth knowing next time "
    "(a preference, an arrangement), save it with the remember tool. Use what the memory block says about them."
)
RUNS = [
    ("remember_customer", "Please only ever email me, never call. I'm on the annual Pro plan."),
    ("returning_customer", "Hi again, when does my plan renew?"),
]


def setup_tenant(tenant: Any) -> Agent:
    agent, _ = Agent.objects.get_or_create(
        tenant=tenant,
        name="concierge",
        defaults={
            "system_prompt": PROMPT,
            "tools": ["lookup_account", "remember"],
            "model": "claude-haiku-4-5",
            "memory_token_budget": 500,
            "description": "Demo agent that remembers customers between runs",
        },
    )
    ToolGrant.objects.get_or_create(
        tenant=tenant, tool_name="remember", agent=agent, defaults={"allow": {"max_facts": 3}}
    )
    ToolGrant.objects.get_or_create(
        tenant=tenant, tool_name="lookup_account", agent=agent, defaults={"allow": {}}
    )
    return agent


def run(ctx: Any) -> None:
    slug = next(iter(ctx.tenants))
    tenant = ctx.tenants[slug]
    agent = setup_tenant(tenant)
    operator = ctx.users[slug]["operator"]
    done = set(
        Run.objects.for_tenant(tenant)
        .filter(metadata__demo_batch=BATCH)
        .values_list("metadata__scenario", flat=True)
    )
    for scenario, text in RUNS:
        if scenario in done:
            continue
        run_submit(
            tenant=tenant,
            agent=agent,
            input=text,
            submitted_by=operator,
            role="operator",
            metadata={"scenario": scenario, "demo_batch": BATCH, "subject": SUBJECT},
        )
        wait_settled(tenant, batch=BATCH)  # run 2 must start after run 1 wrote its fact
    second = (
        Run.objects.for_tenant(tenant)
        .filter(metadata__demo_batch=BATCH, metadata__scenario="returning_customer")
        .first()
    )
    ctx.say(
        f"{slug}: memory — run 1 remembered a fact about {SUBJECT}; run {second.pk if second else '?'} started with it "
        f"(Memory page: /t/{slug}/memory/?subject={SUBJECT})"
    )
