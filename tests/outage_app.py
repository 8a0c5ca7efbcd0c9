"""Seed and inspect the private database of an outage test, in a process of its own.

The pytest process is bound to the shared test database; the outage tests' workers use a
PostgreSQL of their own (tests/services.py), so seeding and the final checks run here, with
``DATABASE_URL`` / ``REDIS_URL`` pointing at it:

    python -m tests.outage_app seed <slug> <runs> <scenario path>   → {"runs": [ids]}
    python -m tests.outage_app state <id>...                        → the end state, as JSON
"""

from __future__ import annotations

import json
import os
import sys
from decimal import Decimal
from typing import Any


def seed(slug: str, n: int, scenario: str) -> dict[str, Any]:
    from runs.models import Agent, Run, ToolGrant
    from runs.services import enqueue_run_now
    from tenants.models import Role
    from tests.factories import TenantFactory, TierFactory
    from tests.runtime.conftest import ALL_TOOLS

    tier = TierFactory()
    tier.task_cost_cap = tier.user_day_cost_cap = tier.user_month_cost_cap = tier.tenant_month_cost_cap = Decimal("1000")
    tier.max_concurrent_runs = 100
    tier.save()
    tenant = TenantFactory(slug=slug, name=slug, tier=tier, gate_irreversible_tools=False)
    from agentops.toolbox.seed import seed_demo_data

    seed_demo_data(tenant)
    agent = Agent.objects.create(
        tenant=tenant, name="support", system_prompt="You are a careful support agent.", model="claude-sonnet-4-6",
        fallback_model="claude-haiku-4-5", tools=ALL_TOOLS, max_tokens=512,
    )
    for name in ALL_TOOLS:
        ToolGrant.objects.create(tenant=tenant, tool_name=name, allow={"domains": ["docs.example.com"]} if name == "fetch_url" else {})
    ids = []
    for i in range(n):
        run = Run.objects.create(tenant=tenant, agent=agent, input=f"Help customer {i}.", submitter_role=Role.OPERATOR,
                                 metadata={"scenario": scenario})
        enqueue_run_now(run)
        ids.append(run.pk)
    return {"runs": ids}


def state(ids: list[int]) -> dict[str, Any]:
    from agentops.toolbox.models import Refund, SentEmail
    from budgets.models import Reservation, ReservationStatus
    from runs.models import Run, ToolCall

    out: dict[str, Any] = {"runs": {}, "open_reservations": Reservation.unscoped.filter(
        run_id__in=ids, status=ReservationStatus.OPEN).count()}
    for run in Run.unscoped.filter(pk__in=ids).order_by("pk"):
        out["runs"][run.pk] = {
            "status": run.status, "outcome": run.outcome, "error": run.error_message[:200],
            "refunds": Refund.unscoped.filter(run_id=run.pk).count(),
            "emails": SentEmail.unscoped.filter(run_id=run.pk).count(),
            "tool_calls": ToolCall.unscoped.filter(run=run).count(),
            "log_problem": _log_problem(run),
        }
    return out


def _log_problem(run: Any) -> str:
    """'' when every tool_use has exactly one tool_result in the next turn, else what is wrong."""
    messages = list(run.messages.order_by("seq"))
    for i, m in enumerate(messages):
        uses = [b["id"] for b in m.content if isinstance(b, dict) and b.get("type") == "tool_use"] if m.role == "assistant" else []
        if not uses:
            continue
        if i + 1 >= len(messages):
            return f"tool_use {uses} at seq {m.seq} has no tool_result"
        results = [b.get("tool_use_id") for b in messages[i + 1].content if isinstance(b, dict) and b.get("type") == "tool_result"]
        if sorted(results) != sorted(uses):
            return f"seq {m.seq}: tool_use {uses} answered by {results}"
    return ""


def main(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentops.settings")
    import django

    django.setup()
    if argv[0] == "seed":
        result = seed(argv[1], int(argv[2]), argv[3])
    elif argv[0] == "state":
        result = state([int(x) for x in argv[1:]])
    else:
        raise SystemExit(f"unknown command {argv[0]!r}")
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
