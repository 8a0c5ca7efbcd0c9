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
    api = [{"role": m.role, "content": m.content} for m in messages]
    limit = settings.CONTEXT_TRIM_TOKENS
    # ~3 bytes per token is a deliberate over-estimate, so we trim early rather than late.
    sizes = [len(json.dumps(m["content"])) // 3 for m in api]
    if sum(sizes) <= limit or len(api) < 4:
        return api
    head, rest, rest_sizes = api[:1], api[1:], sizes[1:]
    dropped = 0
    total = sum(sizes)
    while total > limit and len(rest) > 2:
        total -= rest_sizes[0] + rest_sizes[1]
        rest, rest_sizes = rest[2:], rest_sizes[2:]
        dropped += 2
    notice = {"type": "text", "text": f"[AgentOps: {dropped} earlier messages were omitted to fit the context window; the full log is kept.]"}
    first = {"role": "user", "content": list(head[0]["content"]) + [notice]}
    return [first, *rest]
