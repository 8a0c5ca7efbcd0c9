"""Answering an assistant turn's ``tool_use`` blocks: exactly one ``tool_result`` each.

Executed, refused, rejected, reused from the idempotency ledger, or held for a human (``Wait``).
A part of the run driver (:class:`agentops.harness.loop.RunDriver` mixes it in), kept apart because
it is the half of a step that touches tools, grants and escalations, not the model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from agentops.harness import evaluators, fixtures, grants, hooks, online
from agentops.harness.durability import relax_commit
from agentops.harness.store import (
    AgentRecord,
    MessageRecord,
    RunRecord,
    RunStatus,
    RunStore,
    ToolCallRecord,
    ToolCallStatus,
)
from agentops.harness.tracing import RunTracer
from agentops.memory import journal
from agentops.memory.models import FailureEntry
from agentops.redact import redact_obj
from agentops.tools import registry
from agentops.tools.registry import arguments_sha256, canonical_arguments

# Refusals the failure journal records, by the kind it files them under. The rest (a call cut off by
# max_tokens, one not executed because the run stopped, changed arguments after approval) say nothing
# about the call itself.
JOURNALED_REFUSALS = {
    "unknown_tool": FailureEntry.Kind.REFUSED, "tool_not_granted": FailureEntry.Kind.REFUSED,
    "permission_denied": FailureEntry.Kind.REFUSED, "validation_error": FailureEntry.Kind.VALIDATION,
    "not_found": FailureEntry.Kind.VALIDATION,
}
FINISHED_CALL_STATUSES = {ToolCallStatus.SUCCEEDED, ToolCallStatus.ERROR, ToolCallStatus.REFUSED, ToolCallStatus.REJECTED}
# A call in one of these states may or may not have taken effect (a crash cut it off).
UNKNOWN_CALL_STATUSES = {ToolCallStatus.STARTED, ToolCallStatus.OUTCOME_UNKNOWN}


@dataclass
class Stop:
    """The run leaves the loop: a final status, or a wait state."""
    status: str
    outcome: str = ""
    error_type: str = ""
    error_message: str = ""
    result: str = ""


class Wait(Exception):
    """A tool call is held for a human; the run waits as awaiting_approval."""


class ToolTurn:
    """The tool half of :class:`agentops.harness.loop.RunDriver`; the driver provides these."""

    run: RunRecord
    agent: AgentRecord
    store: RunStore
    tracer: RunTracer
    # Ledger rows written with the tool_result turn (RunDriver.flush), and the seq of the assistant
    # turn this job's model call wrote (-1: none yet).
    pending_calls: list[tuple[str, dict[str, Any]]]
    fresh_turn_seq: int = -1

    def event(self, type_: str, **data: Any) -> None:
        raise NotImplementedError

    def offered_tools(self) -> dict[str, grants.Offered]:
        raise NotImplementedError

    def append_message(self, seq: int, role: str, content: list[dict[str, Any]], **fields: Any) -> MessageRecord:
        raise NotImplementedError

    @property
    def is_eval(self) -> bool:
        return fixtures.eval_metadata(self.run.metadata) is not None

    def journal(self, tool: str, arguments: Any, kind: str, error_type: str, message: str) -> None:
        """File a failure in the agent's journal (one statement; never for an eval run, which must stay
        reproducible and must not teach production runs what its fixtures made fail)."""
        if self.is_eval:
            return
        journal.record(tenant_id=self.run.tenant_id, agent_id=self.agent.pk, tool=tool, arguments=arguments, kind=kind,
                       error_type=error_type, message=message, subject=journal.subject_of(self.run.metadata), run_id=self.run.pk)

    def answer_tools(self, messages: list[MessageRecord], last: MessageRecord, tool_uses: list[dict[str, Any]]) -> Stop | None:
        """Produce exactly one tool_result per tool_use and persist them as the next user turn."""
        ids = [b["id"] for b in tool_uses]
        calls: dict[str, ToolCallRecord] = {}
        escalations: dict[str, hooks.EscalationRecord] = {}
        unknown: dict[str, hooks.EscalationRecord] = {}
        # Issue 14: a turn this job's own model call just wrote has no ledger rows or escalations
        # yet (only the lease holder's tool half writes them, and it has not run for these fresh
        # ids), so the two reads are skipped. A turn read back from the log (a resumed run) reads both.
        if last.seq != self.fresh_turn_seq:
            calls = dict(self.store.tool_calls(self.run.pk, ids))
            for e in hooks.escalation_store().for_run(run_id=self.run.pk, tool_use_ids=ids):
                (unknown if e.kind == hooks.KIND_OUTCOME_UNKNOWN else escalations)[e.tool_use_id] = e
        offered = self.offered_tools()
        # Flags whose policy is "hold": on the tool results just before, or on this very turn.
        held_for = online.held_flags(self.agent, [*(messages[-2].flags if len(messages) >= 2 else []), *(last.flags or [])])
        self._result_scores: dict[str, float] = {}
        results: list[dict[str, Any]] = []
        result_flags: list[str] = []
        breaker: Stop | None = None
        for block in tool_uses:
            tool_use_id, name, arguments = block["id"], str(block.get("name", "")), block.get("input")
            call = calls.get(tool_use_id)
            if call is not None and call.status in FINISHED_CALL_STATUSES:
                results.append(_result_block(tool_use_id, call.result, call.is_error))
                continue
            retry_decided = False
            if call is not None and call.status in UNKNOWN_CALL_STATUSES:
                # A crash cut this call off between start and finish: it may have taken effect.
                # Only a tool declared idempotent runs again on its own (same idempotency key);
                # for any other, a human decides: retry, mark done with a result, or fail.
                spec = registry.get_tool(name, self.run.tenant_id)
                if spec is not None and spec.idempotent and call.status == ToolCallStatus.STARTED and tool_use_id not in unknown:
                    self.event("tool_reexecuted", tool=name[:200], tool_use_id=tool_use_id, reason="outcome_unknown")
                else:
                    block_, stop = self.outcome_unknown(tool_use_id, name, arguments, call, unknown.get(tool_use_id))
                    if block_ is not None:
                        results.append(block_)
                        breaker = breaker or stop
                        continue
                    retry_decided = True
            if breaker is not None:
                results.append(self.refuse(tool_use_id, name, arguments, "not_executed", f"Not executed: the run stopped ({breaker.outcome})."))
                continue
            if last.stop_reason == "max_tokens":
                results.append(self.refuse(tool_use_id, name, arguments, "truncated_tool_call",
                                           "This tool call was cut off by max_tokens and was not executed. Send it again, complete."))
                continue
            entry = offered.get(name)
            if entry is None:
                kind = "unknown_tool" if registry.get_tool(name, self.run.tenant_id) is None else "tool_not_granted"
                results.append(self.refuse(tool_use_id, name, arguments, kind, f"Tool '{name[:100]}' is not available to this agent. Available: {', '.join(sorted(offered)) or 'none'}."))
                continue
            repeated = repetition_count(messages, name, arguments)
            # A call that failed before for this subject (a live journal entry) counts as one earlier call.
            known = None if self.is_eval else journal.matches(tenant_id=self.run.tenant_id, agent_id=self.agent.pk, tool=name,
                                                             arguments=arguments, subject=journal.subject_of(self.run.metadata))
            if repeated + (1 if known else 0) >= self.agent.repetition_threshold:
                why = " (counting the failure journal's entry for this subject)" if known else ""
                breaker = Stop(RunStatus.FAILED, "repetition", "RepetitionBreaker",
                               f"{name} was called with the same arguments {self.agent.repetition_threshold} times{why}.")
                self.journal(name, arguments, FailureEntry.Kind.BREAKER, "RepetitionBreaker", breaker.error_message)
                results.append(self.refuse(tool_use_id, name, arguments, "not_executed", f"Not executed: the run stopped ({breaker.outcome})."))
                continue
            try:
                args = registry.validate_arguments(entry.spec, arguments, (entry.grant.allow if entry.grant else {}) or {})
            except registry.ToolError as exc:
                results.append(self.refuse(tool_use_id, name, arguments, exc.error_class, str(exc)))
                continue
            escalation = escalations.get(tool_use_id)
            # An eval run waits for no human: its side-effecting calls answer from fixtures (execute).
            is_eval = fixtures.eval_metadata(self.run.metadata) is not None
            if entry.spec.handoff and not is_eval:
                results.append(self.handoff(tool_use_id, name, args, escalation))
                continue
            # A human's "retry" of an unknown outcome is the approval: it is not gated again.
            reason = None if retry_decided or is_eval else grants.gate_reason(self.run, entry, args, held_for=held_for)
            if reason:
                decided = self.gate(tool_use_id, entry, args, reason, escalation)
                if decided is not None:
                    results.append(decided)
                    continue
            outcome_block, flags = self.execute(tool_use_id, entry, args, call, seq=last.seq)
            results.append(outcome_block)
            result_flags.extend(flags)
        seq = last.seq + 1
        self.event("turn", role="user", seq=seq, tool_results=len(results), flags=sorted(set(result_flags)))
        self.append_message(seq, "user", results, flags=sorted(set(result_flags)), scores=self._result_scores)
        return breaker

    def _record(self, tool_use_id: str, name: str, arguments: Any, *, durable: bool = False, **fields: Any) -> None:
        """Upsert the idempotency-ledger row; ``durable`` before an effect leaves the database."""
        row = _ledger_row(name, arguments, **fields)
        with transaction.atomic():
            if not durable:
                relax_commit()
            self.store.record_tool_call(self.run, tool_use_id, row)

    def refuse(self, tool_use_id: str, name: str, arguments: Any, error_class: str, message: str) -> dict[str, Any]:
        content = json.dumps({"error": {"type": error_class, "message": message}})
        self._record(tool_use_id, name, arguments, status=ToolCallStatus.REFUSED, result=content, is_error=True, error_class=error_class, finished_at=timezone.now())
        self.event("tool_refused", tool=name[:200], tool_use_id=tool_use_id, error=error_class)
        if error_class in JOURNALED_REFUSALS:
            self.journal(name, arguments, JOURNALED_REFUSALS[error_class], error_class, message)
        return _result_block(tool_use_id, content, True)

    def execute(self, tool_use_id: str, entry: grants.Offered, args: dict[str, Any], call: ToolCallRecord | None,
                seq: int | None = None) -> tuple[dict[str, Any], list[str]]:
        spec = entry.spec
        # Issue 14: a read-only tool declared idempotent needs no "started" row before it runs — a
        # crash re-runs it either way, as it would re-run a started idempotent call — and its
        # finished row is written with the tool_result turn, in that step's one transaction.
        deferred = spec.side_effect == "read" and spec.idempotent
        if not deferred:
            self._record(tool_use_id, spec.name, args, status=ToolCallStatus.STARTED, side_effect=spec.side_effect,
                         durable=spec.side_effect != "read")
        self.event("tool_start", tool=spec.name, tool_use_id=tool_use_id)
        ctx = registry.ToolContext(tenant_id=self.run.tenant_id, run_id=self.run.pk, agent_id=self.agent.pk, tool_use_id=tool_use_id,
                                   allow=(entry.grant.allow if entry.grant else {}) or {}, seq=seq,
                                   metadata=self.run.metadata if isinstance(self.run.metadata, dict) else {})
        with self.tracer.span(f"execute_tool {spec.name}", {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": spec.name,
                                                            "gen_ai.tool.call.id": tool_use_id, "gen_ai.tool.type": "function",
                                                            "agentops.side_effect": spec.side_effect}) as span:
            outcome = fixtures.answer(self.run.metadata, spec, args) or registry.execute(spec, ctx, args)
            if outcome.is_error:
                span["error.type"] = outcome.error_class or "tool_error"
            span["agentops.attempts"] = outcome.attempts
        content = registry.truncate_output(outcome.content, settings.TOOL_OUTPUT_LIMIT_CHARS)
        evaluated = evaluators.evaluate_tool_result(content, tool_names=tuple(self.offered_tools()))
        flags = evaluated.flags
        for flag_name, score in online.nonzero(evaluated.scores).items():
            self._result_scores[flag_name] = max(score, self._result_scores.get(flag_name, 0.0))
        finished: dict[str, Any] = {"status": ToolCallStatus.ERROR if outcome.is_error else ToolCallStatus.SUCCEEDED, "result": content,
                    "is_error": outcome.is_error, "error_class": outcome.error_class or "", "attempts": outcome.attempts,
                    "duration_ms": outcome.duration_ms, "result_size": outcome.size, "finished_at": timezone.now(), "flags": flags}
        if deferred:
            self.pending_calls.append((tool_use_id, _ledger_row(spec.name, args, side_effect=spec.side_effect, **finished)))
        else:
            self._record(tool_use_id, spec.name, args, **finished)
        self.event("tool_end", tool=spec.name, tool_use_id=tool_use_id, is_error=outcome.is_error, duration_ms=round(outcome.duration_ms, 2), flags=flags)
        if outcome.is_error and outcome.error_class != "transient_error":
            # Deterministic: the same call fails the same way again (a transient one may not).
            self.journal(spec.name, args, FailureEntry.Kind.TOOL_ERROR, outcome.error_class or "tool_error", _error_message(content))
        return _result_block(tool_use_id, content, outcome.is_error), flags

    def gate(self, tool_use_id: str, entry: grants.Offered, args: dict[str, Any], reason: str, escalation: hooks.EscalationRecord | None) -> dict[str, Any] | None:
        """None: approved, execute now. A block: the decided refusal. Raises Wait while pending."""
        if escalation is None:
            hooks.escalation_store().open(run=self.run, kind=hooks.KIND_TOOL, tool_use_id=tool_use_id, tool_name=entry.spec.name, arguments=args,
                            grant=entry.grant, gate_reason=reason)
            self._record(tool_use_id, entry.spec.name, args, status=ToolCallStatus.GATED, side_effect=entry.spec.side_effect)
            self.event("gated", tool=entry.spec.name, tool_use_id=tool_use_id, reason=reason)
            raise Wait
        if escalation.status == hooks.PENDING:
            raise Wait
        if escalation.status == hooks.APPROVED:
            if escalation.arguments_sha256 != arguments_sha256(args):
                return self.refuse(tool_use_id, entry.spec.name, args, "arguments_changed", "The approved arguments do not match this call; it was not executed.")
            return None
        why = escalation.comment or escalation.status
        content = json.dumps({"error": {"type": f"approval_{escalation.status}", "message": f"A human operator did not approve this call ({escalation.status}): {why}"}})
        self._record(tool_use_id, entry.spec.name, args, status=ToolCallStatus.REJECTED, result=content, is_error=True,
                     error_class=f"approval_{escalation.status}", finished_at=timezone.now())
        return _result_block(tool_use_id, content, True)

    def outcome_unknown(self, tool_use_id: str, name: str, arguments: Any, call: ToolCallRecord,
                        escalation: hooks.EscalationRecord | None) -> tuple[dict[str, Any] | None, Stop | None]:
        """A non-idempotent call cut off by a crash. ``(None, None)``: the operator chose retry,
        execute it again under the same key. Else the tool_result block, and a Stop when the
        operator chose to fail the run. Raises Wait while nobody has decided."""

        args = arguments if isinstance(arguments, dict) else {"_raw": str(arguments)[:2000]}
        if escalation is None or (call.status == ToolCallStatus.STARTED and escalation.status != hooks.PENDING):
            # First sight of the crash, or the retry an operator allowed was cut off as well.
            why = ("The worker stopped between starting and finishing this call, so it may or may not have taken effect; "
                   f"{name[:100]} is not declared idempotent, so it is not repeated without a human.")
            with transaction.atomic():
                self._record(tool_use_id, name, args, durable=True, status=ToolCallStatus.OUTCOME_UNKNOWN)
                if escalation is None:
                    hooks.escalation_store().open(run=self.run, kind=hooks.KIND_OUTCOME_UNKNOWN, tool_use_id=tool_use_id, tool_name=name[:200],
                                    arguments=args, grant=None, gate_reason=why, urgency="high")
                else:
                    hooks.escalation_store().reopen(escalation=escalation, gate_reason=why)
                self.event("outcome_unknown", tool=name[:200], tool_use_id=tool_use_id)
            raise Wait
        if escalation.status == hooks.PENDING:
            raise Wait
        if escalation.status == hooks.APPROVED and escalation.decision == "retry":
            if escalation.arguments_sha256 != arguments_sha256(args):
                return self.refuse(tool_use_id, name, args, "arguments_changed", "The arguments to retry do not match this call; it was not executed."), None
            return None, None
        if escalation.status == hooks.APPROVED and escalation.decision == "mark_done":
            content = escalation.resolution
            self._record(tool_use_id, name, args, status=ToolCallStatus.SUCCEEDED, result=content, is_error=False, error_class="",
                         finished_at=timezone.now())
            self.event("tool_end", tool=name[:200], tool_use_id=tool_use_id, is_error=False, marked_done=True)
            return _result_block(tool_use_id, content, False), None
        # fail, or nobody decided in time (expired): the run stops; the call is never repeated.
        why = escalation.comment or escalation.status
        content = json.dumps({"error": {"type": "outcome_unknown", "message": f"This call was cut off by a crash and was not repeated: {why}"}})
        self._record(tool_use_id, name, args, status=ToolCallStatus.ERROR, result=content, is_error=True, error_class="outcome_unknown",
                     finished_at=timezone.now())
        stop = Stop(RunStatus.FAILED, "outcome_unknown", "OutcomeUnknown",
                    f"{name[:100]} was cut off by a crash and its outcome is unknown; the run was stopped ({escalation.status}: {why}).")
        return _result_block(tool_use_id, content, True), stop

    def handoff(self, tool_use_id: str, name: str, args: dict[str, Any], escalation: hooks.EscalationRecord | None) -> dict[str, Any]:
        if escalation is None:
            hooks.escalation_store().open(run=self.run, kind=hooks.KIND_HANDOFF, tool_use_id=tool_use_id, tool_name=name, arguments=args, grant=None,
                            gate_reason="The agent asked for a human.", reason=str(args.get("reason", "")),
                            context_summary=str(args.get("context_summary", "")), urgency=str(args.get("urgency", "normal")))
            self._record(tool_use_id, name, args, status=ToolCallStatus.GATED, side_effect="write")
            self.event("handoff", tool_use_id=tool_use_id, urgency=args.get("urgency"))
            raise Wait
        if escalation.status == hooks.PENDING:
            raise Wait
        ok = escalation.status == hooks.APPROVED
        content = json.dumps({"decision": escalation.status, "operator_comment": escalation.comment})
        self._record(tool_use_id, name, args, status=ToolCallStatus.SUCCEEDED if ok else ToolCallStatus.REJECTED, result=content,
                     is_error=not ok, finished_at=timezone.now())
        return _result_block(tool_use_id, content, not ok)


def _ledger_row(name: str, arguments: Any, **fields: Any) -> dict[str, Any]:
    row = {"tool_name": name[:200], "arguments": redact_obj(arguments if isinstance(arguments, dict) else {"_raw": str(arguments)[:2000]}),
           "arguments_sha256": arguments_sha256(arguments) if isinstance(arguments, dict) else ""}
    row.update(fields)
    return row


def _result_block(tool_use_id: str, content: Any, is_error: bool) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_use_id, "content": content if isinstance(content, str) else json.dumps(content)}
    if is_error:
        block["is_error"] = True
    return block


def _error_message(content: str) -> str:
    """The message of a structured ``{"error": {"type", "message"}}`` result, else the text itself."""
    try:
        data = json.loads(content)
    except ValueError:
        return content[:2000]
    error = data.get("error") if isinstance(data, dict) else None
    return str(error.get("message", "")) if isinstance(error, dict) else content[:2000]


def repetition_count(messages: list[MessageRecord], name: str, arguments: Any) -> int:
    """How many tool_use blocks in the log call ``name`` with these canonical arguments."""
    try:
        key = canonical_arguments(arguments)
    except (TypeError, ValueError):
        return 0
    count = 0
    for m in messages:
        if m.role != "assistant":
            continue
        for b in m.content:
            if b.get("type") == "tool_use" and b.get("name") == name:
                try:
                    if canonical_arguments(b.get("input")) == key:
                        count += 1
                except (TypeError, ValueError):
                    continue
    return count
