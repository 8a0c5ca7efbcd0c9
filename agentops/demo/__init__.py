"""The demo's steps. ``manage.py demo`` seeds the platform, then calls each step in order.

A capability adds its step (a dotted path to ``func(ctx: DemoContext) -> None``) to ``DEMO_STEPS``.
Every step must be idempotent: running the demo twice creates no duplicates. Steps run after the
seed and the workers start, before the console is served; ``ctx`` carries the seeded tenants,
users (by tenant slug and role), a fresh API key per tenant, and ``ctx.say()`` for output.
"""

from __future__ import annotations

from agentops.demo.context import DemoContext

DEMO_STEPS: list[str] = [
    "budgets.demo.run",
    "runs.demo.run",
    "agentops.escalations.demo.run",
    "agentops.prompts.demo.run",
    "agentops.evals.demo.run",
    "runs.demo_memory.run",
    "runs.mcp_demo.run",
    "runs.journal_demo.run",
]

__all__ = ["DEMO_STEPS", "DemoContext"]
