"""Two tools outside the built-ins, for crash tests with real workers (``AGENTOPS_TOOL_MODULES``).

Each records every execution (with the idempotency key it was given) in Redis before it acts,
and, while the test holds ``block:<run>``, waits on a Redis list — so a test can ``kill -9`` the
worker exactly between the tool's start and its finish. Neither dedupes by key on its own:
exactly-once must come from the harness.
"""

from __future__ import annotations

import json
from typing import Any

import redis
from django.conf import settings

from agentops.tools.registry import ToolContext, tool

SCHEMA = {"type": "object", "properties": {"note": {"type": "string", "maxLength": 200}}, "required": ["note"], "additionalProperties": False}


def conn() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def calls(run_id: int) -> list[dict[str, Any]]:
    return [json.loads(x) for x in conn().lrange(f"crashtools:calls:{run_id}", 0, -1)]


def effects(run_id: int) -> list[str]:
    return [x.decode() for x in conn().lrange(f"crashtools:effects:{run_id}", 0, -1)]


def _run(name: str, ctx: ToolContext, note: str) -> dict[str, Any]:
    r = conn()
    r.rpush(f"crashtools:calls:{ctx.run_id}", json.dumps({"tool": name, "key": ctx.idempotency_key}))
    if r.exists(f"crashtools:block:{ctx.run_id}"):
        r.blpop([f"crashtools:gate:{ctx.run_id}"], timeout=60)
    r.rpush(f"crashtools:effects:{ctx.run_id}", ctx.idempotency_key)
    return {"status": "posted", "note": note, "key": ctx.idempotency_key}


@tool(name="post_ledger_note", description="Post a note to the external ledger (not idempotent: each call posts again).",
      input_schema=SCHEMA, side_effect="write", idempotent=False)
def post_ledger_note(ctx: ToolContext, *, note: str) -> dict[str, Any]:
    return _run("post_ledger_note", ctx, note)


@tool(name="upsert_ticket_note", description="Set the ticket's note, keyed by the idempotency key (safe to repeat).",
      input_schema=SCHEMA, side_effect="write", idempotent=True)
def upsert_ticket_note(ctx: ToolContext, *, note: str) -> dict[str, Any]:
    return _run("upsert_ticket_note", ctx, note)
