"""Which tools a run may use, and which calls must wait for a human.

Offered tools = the agent's tools ∩ the registry (built-ins and the tenant's own MCP tools) ∩ the tenant's grants for the agent and the
submitting role. The model's word is never authority: a ``tool_use`` outside this set is never
executed, whatever it claims. The most specific grant wins (agent+role > agent > role > all).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agentops.harness import hooks
from agentops.harness.store import GrantRecord, RunRecord
from agentops.tools import registry


@dataclass(frozen=True)
class Offered:
    spec: Any  # agentops.tools.registry.ToolSpec
    grant: GrantRecord | None  # None only for hand-off tools, which need no grant


def _specificity(grant: GrantRecord) -> int:
    return (2 if grant.agent_id else 0) + (1 if grant.role else 0)


def offered_tools(run: RunRecord) -> dict[str, Offered]:
    wanted = [name for name in (run.agent.tools or []) if isinstance(name, str)]
    grants = hooks.run_store().grants(run, wanted)
    best: dict[str, GrantRecord] = {}
    for grant in grants:
        if grant.tool_name not in best or _specificity(grant) > _specificity(best[grant.tool_name]):
            best[grant.tool_name] = grant
    offered: dict[str, Offered] = {}
    specs = registry.get_tools(wanted, run.tenant_id)
    for name in wanted:
        spec = specs.get(name)
        if spec is None:
            continue
        if getattr(spec, "handoff", False):
            offered[name] = Offered(spec=spec, grant=best.get(name))
        elif name in best:
            offered[name] = Offered(spec=spec, grant=best[name])
    return offered


def gate_reason(run: RunRecord, offered: Offered, arguments: dict[str, Any], *, held_for: Sequence[str] = ()) -> str | None:
    """Why this call must wait for a human, or None to execute it now."""
    spec, grant = offered.spec, offered.grant
    if grant is not None and grant.requires_approval:
        return f"The grant for {spec.name} requires approval for every call."
    if spec.side_effect == "irreversible" and run.tenant.gate_irreversible_tools:
        return f"{spec.name} is irreversible and this tenant's policy gates irreversible tools."
    if grant is not None and grant.approval_over:
        reason = registry.threshold_reason(spec, arguments, grant.approval_over)
        if reason:
            return reason[0].upper() + reason[1:]
    if held_for and spec.side_effect in ("write", "irreversible"):
        if list(held_for) == ["injection"]:
            return "Injected instructions were detected in the last tool result; side-effecting calls are held."
        return f"Online evaluators flagged the last turn ({', '.join(held_for)}); this agent's policy holds side-effecting calls."
    return None
