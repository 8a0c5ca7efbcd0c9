"""Scrubbing erased facts from the runs' durable logs (the scrubber of :mod:`agentops.memory.transcripts`).

The runs looked at, each through an index: the runs whose ``metadata.subject`` is an erased subject
(``runs_run_subject``), the runs that wrote the erased facts (their ``source_run_id``), and the runs
whose ``remember`` call named the subject (``runs_toolcall_remember_subject``). In those runs:

* a ``remember`` call that wrote an erased fact (its ledger result names the fact id), or any
  ``remember`` call about an erased subject, keeps its shape with the text replaced by the marker:
  the tool_use input (so a resumed run re-sends a valid log), its tool_result, the ledger row;
* every word-for-word copy of an erased fact's text in the log, the events and the run's result
  becomes the marker.

The live deltas (Redis, an hour's preview of the streamed answer) of the runs touched are dropped
after the commit. Spans never hold message content (agentops.harness.tracing), so they need nothing.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import connection, transaction
from django.db.models.fields.json import KT

from agentops.harness import deltas
from agentops.memory.transcripts import MARKER, Erased, Scrubbed, replace_texts
from agentops.redact import redact
from runs.models import Message, Run, RunEvent, ToolCall

REMEMBER = "remember"


def _fact_id(result: Any) -> int | None:
    try:
        data = json.loads(result) if isinstance(result, str) else result
    except ValueError:
        return None
    value = data.get("fact_id") if isinstance(data, dict) else None
    return value if isinstance(value, int) else None


def _scrub_result(result: Any) -> Any:
    """A remember tool_result with the stored text gone (the JSON shape kept when there is one)."""
    try:
        data = json.loads(result) if isinstance(result, str) else result
    except ValueError:
        return MARKER
    if isinstance(data, dict) and "stored" in data:
        data = {**data, "stored": MARKER}
        return json.dumps(data) if isinstance(result, str) else data
    if isinstance(data, dict) and "error" in data:  # a refused call: its message may quote the text
        return json.dumps(
            {
                "error": {
                    "type": data["error"].get("type", "") if isinstance(data["error"], dict) else "",
                    "message": MARKER,
                }
            }
        )
    return MARKER


def _candidate_runs(erased: Erased) -> dict[int, Any]:
    """run id -> the run's metadata, for every run that may hold the erased text."""
    subjects = list(erased.subjects)
    # Three indexed lookups rather than one OR, which PostgreSQL would answer by reading the tenant's runs.
    by_subject = _subject_in(Run.objects.for_tenant(erased.tenant_id), "metadata", subjects)
    named = _subject_in(
        ToolCall.unscoped.filter(tenant_id=erased.tenant_id, tool_name=REMEMBER),
        "arguments",
        sorted({*subjects, *(redact(s) for s in subjects)}),
    )
    ids = {
        *by_subject.values_list("pk", flat=True),
        *named.values_list("run_id", flat=True),
        *erased.source_run_ids,
    }
    runs = Run.objects.for_tenant(erased.tenant_id).filter(pk__in=sorted(ids))
    return dict(runs.values_list("pk", "metadata"))


def _subject_in(qs: Any, field: str, values: list[str]) -> Any:
    """Rows whose ``field->>'subject'`` is one of ``values``. On PostgreSQL as the expression indexes
    are built (``->>``; a plain key lookup compares jsonb and misses them); elsewhere (the SQLite demo,
    where Django renders ``KT`` comparisons as JSON of the value) the plain key lookup."""
    qs = qs.order_by()  # no ordering: ToolCall's default one (by run) would join runs_run
    if connection.vendor != "postgresql":
        return qs.filter(**{f"{field}__subject__in": values})
    return qs.alias(key=KT(f"{field}__subject")).filter(key__in=values)


def _escalation_model() -> Any:
    """escalations.models.Escalation: runs sits below that app and never imports it."""
    return Run._meta.get_field("escalations").related_model


def _effective_subject(arguments: Any, metadata: Any) -> Any:
    if isinstance(arguments, dict) and arguments.get("subject"):
        return arguments["subject"]
    return metadata.get("subject") if isinstance(metadata, dict) else None


def scrub(erased: Erased) -> Scrubbed:
    runs = _candidate_runs(erased)
    if not runs:
        return Scrubbed()
    fact_ids = set(erased.fact_ids)
    whole = {erased.whole_subject, redact(erased.whole_subject)} if erased.whole_subject else set()
    texts = sorted(
        {t for t in erased.texts if t}, key=len, reverse=True
    )  # the longest first: no half-replaced text
    touched: set[int] = set()

    # The remember calls: the ledger says which fact each wrote.
    calls = ToolCall.unscoped.filter(tenant_id=erased.tenant_id, run_id__in=list(runs), tool_name=REMEMBER)
    hit: set[tuple[int, str]] = set()
    n_calls = 0
    for call in calls:
        if (
            _fact_id(call.result) in fact_ids
            or _effective_subject(call.arguments, runs[call.run_id]) in whole
        ):
            hit.add((call.run_id, call.tool_use_id))
            arguments = (
                {**call.arguments, "text": MARKER} if isinstance(call.arguments, dict) else {"text": MARKER}
            )
            result = _scrub_result(call.result) if call.result is not None else None
            if arguments != call.arguments or result != call.result:
                ToolCall.unscoped.filter(pk=call.pk).update(arguments=arguments, result=result)
                n_calls += 1
                touched.add(call.run_id)

    # A gated remember call waits with its arguments on an escalation (an app above runs: reached
    # through Run.escalations). Its stored hash is left as it was, so the scrubbed call can be
    # rejected but never approved (which would store the marker as a fact).
    n_escalations = 0
    escalations = _escalation_model().objects.for_tenant(erased.tenant_id).filter(run_id__in=list(runs))
    for esc in escalations:
        args: object = esc.arguments
        if (esc.run_id, esc.tool_use_id) in hit and isinstance(args, dict):
            args = {**args, "text": MARKER}
        args = replace_texts(args, texts)
        reason, summary = replace_texts(esc.reason, texts), replace_texts(esc.context_summary, texts)
        if (args, reason, summary) != (esc.arguments, esc.reason, esc.context_summary):
            type(esc).objects.filter(pk=esc.pk).update(arguments=args, reason=reason, context_summary=summary)
            n_escalations += 1
            touched.add(esc.run_id)

    n_messages = 0
    for message in Message.unscoped.filter(tenant_id=erased.tenant_id, run_id__in=list(runs)):
        content = _scrub_blocks(message.run_id, message.content, hit, texts)
        if content != message.content:
            Message.unscoped.filter(pk=message.pk).update(content=content)
            n_messages += 1
            touched.add(message.run_id)

    n_events = 0
    if texts:
        for event in RunEvent.unscoped.filter(tenant_id=erased.tenant_id, run_id__in=list(runs)):
            data = replace_texts(event.data, texts)
            if data != event.data:
                RunEvent.unscoped.filter(pk=event.pk).update(data=data)
                n_events += 1
                touched.add(event.run_id)
        for pk, result in (
            Run.unscoped.filter(pk__in=list(runs)).exclude(result="").values_list("pk", "result")
        ):
            cleaned = replace_texts(result, texts)
            if cleaned != result:
                Run.unscoped.filter(pk=pk).update(result=cleaned)
                touched.add(pk)

    run_ids = sorted(touched)
    transaction.on_commit(lambda: deltas.drop(run_ids))
    return Scrubbed(
        runs=len(touched), messages=n_messages, tool_calls=n_calls, events=n_events, escalations=n_escalations
    )


def _scrub_blocks(run_id: int, content: Any, hit: set[tuple[int, str]], texts: list[str]) -> Any:
    if not isinstance(content, list):
        return replace_texts(content, texts)
    out = []
    for block in content:
        if isinstance(block, dict) and block.get("type") == "tool_use" and (run_id, block.get("id")) in hit:
            given = block.get("input")
            block = {
                **block,
                "input": {**given, "text": MARKER} if isinstance(given, dict) else {"text": MARKER},
            }
        elif (
            isinstance(block, dict)
            and block.get("type") == "tool_result"
            and (run_id, block.get("tool_use_id")) in hit
        ):
            block = {**block, "content": _scrub_result(block.get("content"))}
        out.append(replace_texts(block, texts))
    return out
