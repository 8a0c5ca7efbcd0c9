"""The messages list sent to the model, built from the durable log (trimmed near the context window)."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings

from agentops.harness.store import MessageRecord


def build_api_messages(messages: list[MessageRecord]) -> list[dict[str, Any]]:
    """The messages list for the API, trimmed with a notice when it nears the context window.

    Trimming drops whole (assistant, user) pairs after the first user turn, so no tool_use is
    ever separated from its tool_result. The durable log keeps everything.
    """
    return plan_context(messages)[0]


def _dropped(sizes: list[int], limit: int) -> int:
    """How many messages after the first the trim drops for these sizes (0: it all fits)."""
    total = sum(sizes)
    if total <= limit or len(sizes) < 4:
        return 0
    rest_sizes = sizes[1:]
    dropped = 0
    while total > limit and len(rest_sizes) > 2:
        total -= rest_sizes[0] + rest_sizes[1]
        rest_sizes = rest_sizes[2:]
        dropped += 2
    return dropped


def plan_context(messages: list[MessageRecord]) -> tuple[list[dict[str, Any]], range]:
    """The API messages (as :func:`build_api_messages`), and the log indexes this call drops that the
    previous model call still sent: that call's log was this one minus its last (assistant, user) pair,
    so the trim is recomputed for it — no state is kept. Extraction on trim reads these turns."""
    api = [{"role": m.role, "content": m.content} for m in messages]
    limit = settings.CONTEXT_TRIM_TOKENS
    # ~3 bytes per token is a deliberate over-estimate, so we trim early rather than late.
    sizes = [len(json.dumps(m["content"])) // 3 for m in api]
    dropped = _dropped(sizes, limit)
    if not dropped:
        return api, range(0)
    before = _dropped(sizes[:-2], limit) if len(sizes) > 2 else 0
    notice = {"type": "text", "text": f"[AgentOps: {dropped} earlier messages were omitted to fit the context window; the full log is kept.]"}
    first = {"role": "user", "content": list(api[0]["content"]) + [notice]}
    return [first, *api[1 + dropped:]], range(1 + before, 1 + dropped)
