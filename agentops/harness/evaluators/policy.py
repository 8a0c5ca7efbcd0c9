"""What a flag does, per agent: ``{"injection": "hold", "unsupported_claim": "review", ...}``.

* ``record`` — stored on the turn and the run, nothing else;
* ``hold``   — the next side-effecting tool call waits for a human (an escalation of kind tool_call);
* ``fail``   — the run ends ``failed`` with the flag as its outcome, right after the flagged turn;
* ``review`` — the finished run is sent to human review (an escalation of kind ``review``).

A flag the agent's policy does not mention takes :data:`DEFAULTS` (injection holds, as it always
has; ``AGENTOPS_HOLD_ON_INJECTION=0`` makes it record), every other flag records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings

ACTIONS = ("record", "hold", "fail", "review")
DEFAULTS = {"injection": "hold"}


def action(policy: Mapping[str, Any] | None, flag: str) -> str:
    chosen = (policy or {}).get(flag) if isinstance(policy, Mapping) else None
    if chosen in ACTIONS:
        return str(chosen)
    if flag == "injection" and not settings.AGENTOPS_HOLD_ON_INJECTION:
        return "record"
    return DEFAULTS.get(flag, "record")


def flags_with(policy: Mapping[str, Any] | None, flags: Iterable[str], wanted: str) -> list[str]:
    return [f for f in flags if action(policy, f) == wanted]


def clean(value: Any, *, known: Iterable[str]) -> dict[str, str]:
    """A policy as submitted (form, API, admin) -> a valid one; ValueError says what is wrong."""
    if value in (None, ""):
        return {}
    if not isinstance(value, Mapping):
        raise ValueError("The flag policy must be an object mapping a flag to one of: " + ", ".join(ACTIONS) + ".")
    known = set(known)
    out: dict[str, str] = {}
    for flag, chosen in value.items():
        if flag not in known:
            raise ValueError(f"Unknown flag {str(flag)[:60]!r}; known flags: {', '.join(sorted(known))}.")
        if chosen not in ACTIONS:
            raise ValueError(f"{flag}: {str(chosen)[:30]!r} is not one of {', '.join(ACTIONS)}.")
        out[str(flag)] = str(chosen)
    return out
