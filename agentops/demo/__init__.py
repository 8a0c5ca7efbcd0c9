"""The demo's steps. ``manage.py demo`` seeds the platform, then calls each step in order.

A capability adds its step (a dotted path to ``func(ctx: DemoContext) -> None``) to ``DEMO_STEPS``.
Every step must be idempotent: running the demo twice creates no duplicates.
"""

from __future__ import annotations

DEMO_STEPS: list[str] = []
