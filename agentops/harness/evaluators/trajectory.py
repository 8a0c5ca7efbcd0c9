"""The run so far as a list of tool calls with their outcomes, and what its shape says.

Built from the durable message log alone (``(role, content)`` pairs), so the same code reads a live
run, a finished one and an eval case. Flags:

* ``repetition`` — the same tool with the same arguments called twice (the breaker stops at the
  agent's threshold; this flags the run before it gets there);
* ``error_streak`` — :data:`ERROR_STREAK` tool results in a row were errors;
* ``no_progress`` — :data:`NO_PROGRESS_TURNS` assistant turns without one successful tool result,
  or the same assistant text twice.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

ERROR_STREAK = 3
NO_PROGRESS_TURNS = 6

Turn = tuple[str, Sequence[dict[str, Any]]]


@dataclass(frozen=True)
class Call:
    name: str
    arguments_key: str
    succeeded: bool
    error_type: str = ""
    answered: bool = True


def _error_type(content: Any) -> str:
    if isinstance(content, str) and content.startswith("{"):
        try:
            data = json.loads(content)
        except ValueError:
            return "error"
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            return str(data["error"].get("type") or "error")
    return "error"


def calls(log: Iterable[Turn]) -> list[Call]:
    """Every tool_use of the log, in order, with whether its tool_result reported success."""
    uses: list[tuple[str, str, str]] = []
    results: dict[str, tuple[bool, str]] = {}
    for role, content in log:
        for block in content or ():
            if not isinstance(block, dict):
                continue
            if role == "assistant" and block.get("type") == "tool_use":
                try:
                    key = json.dumps(block.get("input"), sort_keys=True, default=str)
                except (TypeError, ValueError):
                    key = str(block.get("input"))
                uses.append((str(block.get("id", "")), str(block.get("name", "")), key))
            elif role == "user" and block.get("type") == "tool_result":
                err = bool(block.get("is_error"))
                results[str(block.get("tool_use_id", ""))] = (not err, _error_type(block.get("content")) if err else "")
    out = []
    for tool_use_id, name, key in uses:
        ok, error_type = results.get(tool_use_id, (False, "never_answered"))
        out.append(Call(name, key, ok, error_type, tool_use_id in results))
    return out


def flags(log: Sequence[Turn]) -> tuple[list[str], float]:
    made = calls(log)
    found: list[str] = []
    if any(n >= 2 for n in Counter((c.name, c.arguments_key) for c in made).values()):
        found.append("repetition")
    streak = 0
    for c in made:
        if not c.answered:
            continue
        streak = 0 if c.succeeded else streak + 1
        if streak >= ERROR_STREAK:
            found.append("error_streak")
            break
    texts: list[str] = []
    since_success = 0
    for role, content in log:
        if role == "assistant":
            since_success += 1
            text = " ".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text").strip()
            if text and len(text) > 20:
                texts.append(text)
        elif any(isinstance(b, dict) and b.get("type") == "tool_result" and not b.get("is_error") for b in content or ()):
            since_success = 0
    if since_success >= NO_PROGRESS_TURNS or len(texts) != len(set(texts)):
        found.append("no_progress")
    return found, min(1.0, len(found) / 2) if found else 0.0
