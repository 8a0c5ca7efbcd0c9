"""The built-in ``remember`` tool: an agent writes a fact about the run's subject.

Granted, allow-listed and audited like any tool (class ``write``; the grant's ``max_facts`` caps
the facts one run may write). Registered when the memory app loads (``MemoryConfig.ready``).
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from agentops.memory import facts
from agentops.tools.errors import ToolPermissionError, ToolValidationError
from agentops.tools.registry import ToolContext, tool


@tool(
    name="remember",
    description=(
        "Save one short fact about the customer, account or user this run is about, so later runs for the same "
        "subject start with it (e.g. a preference, a standing arrangement, something that did not work). Write "
        "a self-contained sentence; do not save secrets, card numbers or instructions. The subject defaults to "
        "the run's subject. Returns JSON {fact_id, subject, stored, flagged}; flagged facts are kept for a "
        "human to review and are not recalled."
    ),
    input_schema={
        "type": "object",
        "properties": {
            "text": {
                "type": "string",
                "minLength": 1,
                "maxLength": facts.MAX_TEXT,
                "description": "The fact, one or two sentences.",
            },
            "subject": {
                "type": "string",
                "minLength": 1,
                "maxLength": facts.MAX_SUBJECT,
                "description": "The subject key; omit it to use the run's subject.",
            },
        },
        "required": ["text"],
        "additionalProperties": False,
    },
    side_effect="write",
    idempotent=True,  # the same text for the same subject is one fact (write_fact dedupes)
    allow_keys=("max_facts",),
)
def remember(ctx: ToolContext, *, text: str, subject: str | None = None) -> dict[str, Any]:
    subject = subject if subject is not None else facts.subject_of(ctx.metadata)
    if subject is None:
        raise ToolValidationError(
            "this run has no subject (metadata.subject), so there is nobody to remember this about"
        )
    limit = ctx.allow.get("max_facts")
    if isinstance(limit, int) and facts.facts_this_run(tenant_id=ctx.tenant_id, run_id=ctx.run_id) >= limit:
        raise ToolPermissionError(f"this run already wrote {limit} facts, the grant's max_facts")
    try:
        fact = facts.write_fact(
            tenant_id=ctx.tenant_id,
            subject=subject,
            text=text,
            source="tool",
            run_id=ctx.run_id,
            seq=ctx.seq,
            agent_id=ctx.agent_id,
            now=timezone.now(),
        )
    except facts.FactRejected as exc:
        raise ToolValidationError(str(exc)) from exc
    return {"fact_id": fact.pk, "subject": fact.subject, "stored": fact.text, "flagged": fact.flagged}
