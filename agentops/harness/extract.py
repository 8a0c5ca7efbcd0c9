"""Extraction on trim: before the context trim drops turns for good, ask the model for the facts worth
keeping from them and store those under the run's subject (issue 16).

The call is a model call like any other: reserved against the run's caps (task, user, tenant) before
it is made, settled to its exact price into the ledger and charged to the run, released when the model
is unavailable. It never stops the run: a cap refusal, an unpriced model, an outage or an unreadable
answer skips the extraction and the run's log says so (``facts_extraction_skipped``). A run without a
subject (``metadata.subject``) has nobody to remember facts about: nothing is asked.

Scripted runs answer from ``metadata.extraction_scenario`` (default ``extract_facts``), as the LLM
judge answers from ``judge_scenario``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone

from agentops.harness import costs
from agentops.harness.store import MessageRecord, RunRecord
from agentops.memory import extraction, facts, journal
from agentops.memory.models import Fact

log = logging.getLogger(__name__)

DEFAULT_SCENARIO = "extract_facts"


def on_trim(
    run: RunRecord, turns: Sequence[MessageRecord], *, model: str, event: Callable[..., None], gateway: Any
) -> int:
    """Extract and store facts from ``turns`` (the ones this call's trim drops); returns how many were stored.
    ``event`` is the run driver's buffered event writer (the events commit with the step); ``gateway`` is
    ``agentops.llm.gateway`` as the loop imported it (lazily: the anthropic SDK stays out of web processes)."""
    if not turns:
        return 0
    span = {"from_seq": turns[0].seq, "to_seq": turns[-1].seq}
    subject = journal.subject_of(run.metadata)
    if not subject:
        event("facts_extraction_skipped", reason="no_subject", **span)
        return 0
    messages = extraction.request_messages([(m.seq, m.role, m.content) for m in turns], subject=subject)
    bound = gateway.input_tokens_bound(system=extraction.SYSTEM, messages=messages, tools=[])
    try:
        reservation = costs.reserve(
            run=run, model=model, max_tokens=extraction.MAX_TOKENS, input_tokens_bound=bound
        )
    except (costs.CostCapExceeded, costs.UnknownModelPrice, costs.ModelNotAllowed) as exc:
        event("facts_extraction_skipped", reason=type(exc).__name__, detail=str(exc)[:300], **span)
        return 0
    metadata: Any = run.metadata if isinstance(run.metadata, dict) else {}
    try:
        result = gateway.create_message(
            model=model,
            fallback_model=None,
            system=extraction.SYSTEM,
            messages=messages,
            tools=[],
            max_tokens=extraction.MAX_TOKENS,
            scenario=metadata.get("extraction_scenario") or DEFAULT_SCENARIO,
            conversation_key=f"extract-{run.pk}-{span['from_seq']}",
        )
    except (gateway.ModelUnavailable, gateway.ModelRequestError) as exc:
        costs.release(reservation=reservation)
        event("facts_extraction_skipped", reason=exc.error_type, **span)
        return 0
    message = result.message
    entry = costs.settle(
        reservation=reservation,
        usage=message.usage.model_dump(mode="json") if message.usage else {},
        model=result.model,
        response_id=message.id,
    )
    cost = getattr(entry, "cost", None)
    found = extraction.parse("".join(getattr(b, "text", "") for b in message.content))
    now = timezone.now()
    agent_id = getattr(run, "agent_id", None)
    stored = 0
    for text in found:
        try:
            facts.write_fact(
                tenant_id=run.tenant_id,
                subject=subject,
                text=text,
                source=Fact.Source.EXTRACTION,
                run_id=run.pk,
                seq=turns[-1].seq,
                agent_id=agent_id,
                now=now,
            )
        except (ValueError, ValidationError) as exc:
            # A fact write_fact refuses (invalid, too long, …) is dropped; the others are kept.
            log.warning("extracted fact refused: %s", type(exc).__name__)
            continue
        stored += 1
    event(
        "facts_extracted",
        facts=stored,
        refused=len(found) - stored,
        model=result.model,
        cost=str(cost) if cost is not None else None,
        summary=f"extracted {stored} fact{'s' if stored != 1 else ''} from turns {span['from_seq']}–{span['to_seq']}",
        **span,
    )
    return stored
