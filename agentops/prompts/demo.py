"""Demo step for prompts: three prompts with several versions each, the demo agents following them,
production moved version by version with runs (and spend) on each, one rollback, and a staging version.

Gate evidence: until the evals app registers its results source, every production move here is an
admin override with the reason "seeded" (marked as such on the label history). The evals app's demo
step seeds the eval runs that make these moves pass and the staging version fail.
Idempotent: a prompt that exists is left as it is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from agentops.prompts import services
from agentops.prompts.models import PRODUCTION, STAGING, Prompt, PromptVersion
from agentops.prompts.playground import playground_start
from runs.demo import (
    RESEARCH_PROMPT,
    RESEARCH_TOOLS,
    SUPPORT_PROMPT,
    SUPPORT_TOOLS,
    submit_traffic,
    wait_settled,
)
from runs.models import Agent, Run, RunStatus
from runs.services import run_submit
from tenants.models import Membership, Role, Tenant

BATCH = "demo-prompts-v1"
SEEDED = "seeded"

# name -> (path, description, agents that follow it, versions: (changes to the base, changelog))
PROMPTS: dict[str, tuple[str, str, list[str], dict[str, Any], list[tuple[dict[str, Any], str]]]] = {
    "support-agent": (
        "support", "Acme's customer-support agent.", ["support", "capped"],
        {"system": SUPPORT_PROMPT, "model": "claude-sonnet-4-6", "params": {"max_tokens": 1024}, "tools": SUPPORT_TOOLS},
        [({}, "First version, from the agent's inline prompt."),
         ({"system": SUPPORT_PROMPT + " Greet the customer by name when the account shows it."}, "Greet by name."),
         ({"system": SUPPORT_PROMPT + " Greet the customer by name when the account shows it. Offer a refund proactively "
                     "when a charge looks duplicated."}, "Proactive refunds on duplicate charges."),
         ({"system": SUPPORT_PROMPT.replace("follow the refund policy exactly, ", "") + " Be generous with refunds.",
           "params": {"max_tokens": 1024, "temperature": 0.7}}, "Looser refund wording, warmer temperature (staging trial).")],
    ),
    "research-assistant": (
        "research", "Grant-research assistant answering from approved sources.", ["research"],
        {"system": RESEARCH_PROMPT, "model": "claude-haiku-4-5", "params": {"max_tokens": 1024}, "tools": RESEARCH_TOOLS},
        [({}, "First version."),
         ({"system": RESEARCH_PROMPT + " Quote at most two sentences from any source."}, "Shorter quotes."),
         ({"system": RESEARCH_PROMPT + " Quote at most two sentences from any source. End with the list of sources."},
          "Sources listed at the end.")],
    ),
    "triage-router": (
        "support", "Routes incoming tickets; first message templated.", ["triage"],
        {"system": "You triage support tickets: decide whether the agent can answer or a human must.", "model": "claude-haiku-4-5",
         "params": {"max_tokens": 512}, "tools": SUPPORT_TOOLS, "first_message": "Ticket from {{customer}}: {{ticket}}",
         "variables": ["customer", "ticket"]},
        [({}, "First version."), ({"params": {"max_tokens": 256}}, "Shorter answers.")],
    ),
}
# (prompt, label, version number, reason, rollback) after which runs are submitted (see run()).
MOVES: list[tuple[str, str, int, bool]] = [
    ("support-agent", PRODUCTION, 1, False), ("support-agent", PRODUCTION, 2, False), ("support-agent", PRODUCTION, 3, False),
    ("support-agent", PRODUCTION, 2, True), ("support-agent", STAGING, 4, False),
    ("research-assistant", PRODUCTION, 1, False), ("research-assistant", PRODUCTION, 3, False), ("research-assistant", STAGING, 3, False),
    ("triage-router", PRODUCTION, 2, False), ("triage-router", STAGING, 2, False),
]
TRAFFIC = {"support-agent": [("support", "default", "What are your support hours?"), ("support", "kb_answer", "What is your refund policy?")],
           "research-assistant": [("research", "kb_answer", "Which grants are we eligible for?")]}


def setup_tenant(tenant: Tenant, admin: Any, agents: dict[str, Agent], *, after_move: Callable[[str, str, int], None] | None = None) -> bool:
    """Create the prompts and move their labels; ``after_move(prompt, label, number)`` lets the caller
    put traffic on each production version. Returns False when the prompts were there already."""
    if Prompt.objects.for_tenant(tenant).filter(name__in=list(PROMPTS)).exists():
        return False
    membership = Membership.objects.get(tenant=tenant, user=admin)
    prompts: dict[str, Prompt] = {}
    for name, (path, description, followers, base, versions) in PROMPTS.items():
        prompt = services.prompt_create(tenant=tenant, actor=admin, name=name, description=description, path=path)
        prompts[name] = prompt
        content = dict(base)
        for changes, changelog in versions:
            content = {**content, **changes}
            services.version_create(tenant=tenant, actor=admin, prompt=prompt, data=content, changelog=changelog)
        Agent.objects.for_tenant(tenant).filter(name__in=followers).update(prompt=prompt, prompt_label=PRODUCTION)
    for name, label, number, rollback in MOVES:
        prompt = prompts[name]
        version = PromptVersion.objects.for_tenant(tenant).get(prompt=prompt, number=number)
        if rollback:
            services.label_rollback(tenant=tenant, actor=admin, membership=membership, label=prompt.labels.get(name=label),
                                    reason="v3 offered refunds nobody asked for; back to v2.")
        else:
            services.label_move(tenant=tenant, actor=admin, membership=membership, prompt=prompt, label_name=label, version=version,
                                reason=SEEDED, override=label == PRODUCTION)
        if after_move is not None and label == PRODUCTION:
            after_move(name, label, number)
    return True


def run(ctx: Any) -> None:
    for slug, tenant in ctx.tenants.items():
        agents = {a.name: a for a in Agent.objects.for_tenant(tenant)}
        operator = ctx.users[slug][Role.OPERATOR]

        def traffic(name: str, label: str, number: int, tenant: Tenant = tenant, operator: Any = operator,
                    agents: dict[str, Agent] = agents) -> None:
            batch = f"{BATCH}:{name}:v{number}"
            if submit_traffic(tenant, agents, operator, TRAFFIC.get(name, []), say=ctx.say, batch=batch):
                wait_settled(tenant, timeout=60, batch=batch)

        first = slug == next(iter(ctx.tenants))
        created = setup_tenant(tenant, ctx.admin(slug), agents, after_move=traffic if first else None)
        if created and first:
            showcase(tenant, agents, operator=operator, editor=ctx.users[slug][Role.PROMPT_EDITOR])
        ctx.say(f"{slug}: prompts " + ("seeded (production moves are overrides marked 'seeded' until the evals app seeds results)"
                                       if created else "already present"))


def showcase(tenant: Tenant, agents: dict[str, Agent], *, operator: Any, editor: Any, timeout: float = 60) -> list[Run]:
    """A run whose input is triage-router's rendered first-message template, and a try-it pair (support-agent's
    staging v4 beside production) that the runs list hides unless asked for playground runs."""
    runs: list[Run] = []
    agents = {a.name: a for a in Agent.objects.for_tenant(tenant).filter(pk__in=[a.pk for a in agents.values()])}  # now following prompts
    if "triage" in agents:
        runs.append(run_submit(tenant=tenant, agent=agents["triage"], input="", submitted_by=operator, role=Role.OPERATOR,
                               metadata={"scenario": "default"}, variables={"customer": "Ada Lovelace", "ticket": "I was charged twice."}))
    staging = PromptVersion.objects.for_tenant(tenant).filter(prompt__name="support-agent", number=4).first()
    if staging is not None and "support" in agents:
        pair = playground_start(tenant=tenant, membership=Membership.objects.get(tenant=tenant, user=editor), version=staging,
                                agent=agents["support"], input="What is your refund policy?", scenario="kb_answer")
        runs += pair.runs
    deadline = time.monotonic() + timeout
    ids = [r.pk for r in runs]
    while time.monotonic() < deadline and Run.objects.filter(pk__in=ids, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).exists():
        time.sleep(0.5)
    return runs
