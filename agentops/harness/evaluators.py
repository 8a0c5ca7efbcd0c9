"""Online evaluators: cheap checks on every turn of every run, before the next call.

The injection detector looks for instructions aimed at the model inside tool results (the
indirect prompt-injection pattern). A flagged result does not stop the run by itself; the
gate holds any side-effecting tool call that follows it for a human (see harness.grants).
"""

from __future__ import annotations

import re

_INJECTION = re.compile(
    r"(?i)("
    r"ignore (all |any |the )?(previous|prior|above|earlier) (instructions|directions|prompts?)"
    r"|disregard (all |any |the )?(previous|prior|above) "
    r"|forget (all |everything |your )?(previous |prior )?(instructions|rules)"
    r"|new instructions?:"
    r"|system (note|prompt|override|message)\s*:"
    r"|you are now (in )?(developer|dan|jailbreak)"
    r"|(call|use|invoke|run) (the )?(issue_refund|send_email|fetch_url|delete\w*) (tool|function)?"
    r"|do not (tell|inform|mention) (the )?(user|customer|operator)"
    r"|</?(system|instructions?)>"
    r")"
)


def injection_flags(text: str) -> list[str]:
    """Return ["injection"] when text carries instructions aimed at the model."""
    if not text:
        return []
    return ["injection"] if _INJECTION.search(text) else []


def evaluate_assistant_turn(content: list[dict]) -> list[str]:
    """Flags for an assistant turn: empty answers and tool calls without any text reasoning."""
    flags: list[str] = []
    if not content:
        flags.append("empty_turn")
    elif all(b.get("type") == "text" and not b.get("text", "").strip() for b in content):
        flags.append("empty_text")
    return flags
