"""The agent loop: one RQ job drives one run until it finishes, must wait, or is handed back.

Every step is persisted before the next starts, and the durable message log — not process
memory — is what the next step reads. A step is one of:

* the run has no log yet → write the user's input as the first message;
* the last message is the assistant's with ``tool_use`` blocks → answer every one of them with
  exactly one ``tool_result`` (executed, refused, rejected or reused from the idempotency
  ledger), or stop to wait for a human;
* the last message is the assistant's without tool calls → the run succeeded;
* the last message is the user's → check breakers, reserve cost, call the model, settle, persist.

Failures have typed outcomes (``failed: max_iterations``, ``capped: tenant_month``, …) and every
stopped run stays resumable: its log is consistent (no ``tool_use`` without its ``tool_result``).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.utils import timezone

from agentops.harness import costs, deltas, evaluators, grants, hooks, lease, shutdown
from agentops.harness.durability import relax_commit
from agentops.harness.store import (
    TERMINAL_STATUSES,
    EventRow,
    MessageRecord,
    RunRecord,
    RunStatus,
    ToolCallRecord,
    ToolCallStatus,
)
from agentops.harness.tracing import RunTracer
from agentops.logs import bind
from agentops.redact import redact_obj
from agentops.tools import registry
from agentops.tools.registry import arguments_sha256, canonical_arguments, to_anthropic

log = logging.getLogger(__name__)

FINISHED_CALL_STATUSES = {ToolCallStatus.SUCCEEDED, ToolCallStatus.ERROR, ToolCallStatus.REFUSED, ToolCallStatus.REJECTED}
# A call in one of these states may or may not have taken effect (a crash cut it off).
UNKNOWN_CALL_STATUSES = {ToolCallStatus.STARTED, ToolCallStatus.OUTCOME_UNKNOWN}
# Backoff for re-scheduling a run after the SDK's own retries were exhausted (seconds).
RESCHEDULE_BACKOFF = [5, 15, 60, 300, 900]
MAX_RESCHEDULES = 20


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


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
def drive_run(run_id: int, *, worker_id: str | None = None, max_steps: int = 10_000,
              step_log: list[tuple[str, float, float]] | None = None) -> str:
    """Advance a run as far as it can go. Returns what happened, for logs and tests."""
    worker_id = worker_id or worker_identity()
    run = lease.acquire(run_id, worker_id)
    if run is None:
        return "not_leased"
    bind(tenant_id=run.tenant_id, run_id=run.pk)
    driver = RunDriver(run, worker_id)
    driver.step_log = step_log
    with lease.Heartbeat(run_id, worker_id):
        try:
            return driver.drive(max_steps=max_steps)
        except lease.LeaseLost:
            log.warning("lease lost mid-step; another worker owns the run")
            return "lease_lost"
        except (OperationalError, InterfaceError):
            # The database is down: nothing can be recorded, and the attempt must not count
            # against the run. The job layer retries once the database answers again.
            raise
        except Exception as exc:
            # A bug or infrastructure failure: leave the run leased to no one and queued, so
            # the reconciler retries it; after too many attempts fail it with the error.
            log.exception("run step crashed")
            driver.crashed(exc)
            return "crashed"


class RunDriver:
    def __init__(self, run: RunRecord, worker_id: str):
        self.run = run
        self.agent = run.agent
        self.store = hooks.run_store()
        self.worker_id = worker_id
        self.tracer = RunTracer(run)
        self.events: list[EventRow] = []
        # Set by benchmarks: a list that receives (step kind, seconds, model seconds) per step.
        self.step_log: list[tuple[str, float, float]] | None = None
        self._model_s = 0.0
        # Process memory is a cache of the durable log: loaded once per job, then appended to as
        # each step commits. The lease fence on every write guarantees nobody else appends.
        self._log: list[MessageRecord] | None = None
        self.iterations = run.iterations
        self._offered: tuple[float, dict[str, grants.Offered]] | None = None

    # -- bookkeeping -----------------------------------------------------------------
    def event(self, type_: str, **data: Any) -> None:
        self.events.append(EventRow(type=type_, data=redact_obj(data)))

    def flush(self) -> None:
        """Write buffered events and spans; callers hold the transaction and the fence."""
        if self.events:
            self.store.add_events(self.run, self.events)
            self.events = []
        self.tracer.flush()

    def load_log(self) -> list[MessageRecord]:
        if self._log is None:
            self._log = list(self.store.messages(self.run.pk))
        return self._log

    def offered_tools(self) -> dict[str, grants.Offered]:
        """The run's tool set, re-read every few seconds so a revoked grant takes effect mid-run."""
        now = time.monotonic()
        if self._offered is None or now - self._offered[0] > 5:
            self._offered = (now, grants.offered_tools(self.run))
        return self._offered[1]

    def append_message(self, seq: int, role: str, content: list[dict[str, Any]], **fields: Any) -> MessageRecord:
        try:
            with transaction.atomic(savepoint=False):
                lease.fence_relaxed(self.run.pk, self.worker_id)
                msg = self.store.add_message(self.run, seq=seq, role=role, content=content, **fields)
                self.flush()
        except IntegrityError:
            # Someone else wrote this step: the lease fence makes that "we were too slow".
            raise lease.LeaseLost(self.run.pk)
        self.load_log().append(msg)
        return msg

    def finish(self, stop: Stop) -> str:
        now = timezone.now()
        fields: dict[str, Any] = {"status": stop.status, "outcome": stop.outcome, "error_type": stop.error_type, "error_message": stop.error_message[:5000]}
        if stop.result:
            fields["result"] = stop.result
        if stop.status in TERMINAL_STATUSES:
            fields["finished_at"] = now
        with transaction.atomic():
            self.event("status", status=stop.status, outcome=stop.outcome)
            self.flush()
            if stop.status in TERMINAL_STATUSES:
                hooks.run_queue().close_dangling(run=self.run, error_type=f"run_{stop.status}", message=f"Not executed: the run stopped ({stop.outcome}).")
            if stop.status == RunStatus.CANCELLED:
                hooks.escalation_store().cancel_pending(run=self.run, now=now)
            lease.release(self.run.pk, self.worker_id, **fields)
        return stop.status

    def crashed(self, exc: Exception) -> None:
        self.events, self.tracer.pending = [], []
        if self.store.attempt(self.run.pk) >= 5:
            self.finish(Stop(RunStatus.FAILED, "internal_error", type(exc).__name__, str(exc)))
        else:
            with transaction.atomic():
                lease.release(self.run.pk, self.worker_id, status=RunStatus.QUEUED, not_before=timezone.now() + timedelta(seconds=10))
                hooks.run_queue().enqueue_run(self.run, delay_s=10)

    # -- the loop --------------------------------------------------------------------
    def drive(self, *, max_steps: int) -> str:
        with self.tracer.span(
            f"invoke_agent {self.agent.name}",
            {"gen_ai.operation.name": "invoke_agent", "gen_ai.provider.name": "anthropic", "gen_ai.agent.name": self.agent.name,
             "gen_ai.agent.id": str(self.agent.pk), "gen_ai.conversation.id": str(self.run.pk), "agentops.attempt": self.run.attempt},
        ) as root:
            outcome = self._loop(max_steps)
            root["agentops.outcome"] = outcome
        if self.tracer.pending:
            with transaction.atomic():
                self.tracer.flush()
        if self.tracer.trace_id and not self.run.trace_id:
            self.store.set_trace_id(self.run.pk, self.tracer.trace_id)
        return outcome

    def _control(self) -> str | None:
        control = self.store.control(self.run.pk)
        if control.cancel_requested:
            return self.finish(Stop(RunStatus.CANCELLED, "cancelled"))
        if control.pause_requested or control.runs_disabled:
            reason = "paused" if control.pause_requested else "kill_switch"
            return self.finish(Stop(RunStatus.PAUSED, reason))
        if shutdown.requested:
            return self.hand_back()
        return None

    def hand_back(self) -> str:
        """Worker shutting down: the persisted step stands; another worker continues."""
        with transaction.atomic():
            self.event("handed_back", worker=self.worker_id)
            self.flush()
            lease.release(self.run.pk, self.worker_id, status=RunStatus.QUEUED)
            hooks.run_queue().enqueue_run(self.run)
        return "handed_back"

    def _loop(self, max_steps: int) -> str:
        for _ in range(max_steps):
            t0 = time.perf_counter()
            self._model_s = 0.0
            try:
                return_value = self._step()
            finally:
                if self.step_log is not None:
                    self.step_log.append(("model" if self._model_s else "other", time.perf_counter() - t0, self._model_s))
            if return_value is not None:
                return return_value
        return self.hand_back()

    def _step(self) -> str | None:
        """One step; None means "keep going"."""
        stopped = self._control()
        if stopped:
            return stopped
        messages = self.load_log()
        if not messages:
            self.event("status", status=RunStatus.RUNNING)
            self.append_message(0, "user", [{"type": "text", "text": self.run.input}])
            return None
        last = messages[-1]
        if last.role == "assistant":
            tool_uses = [b for b in last.content if b.get("type") == "tool_use"]
            if not tool_uses:
                text = "\n".join(b.get("text", "") for b in last.content if b.get("type") == "text").strip()
                return self.finish(Stop(RunStatus.SUCCEEDED, last.stop_reason or "end_turn", result=text))
            try:
                stop = self.answer_tools(messages, last, tool_uses)
            except Wait:
                return self.finish(Stop(RunStatus.AWAITING_APPROVAL, "awaiting_approval"))
            if stop:
                return self.finish(stop)
            return None
        return self.call_model(messages)

    # -- model calls -----------------------------------------------------------------
    def breaker(self) -> Stop | None:
        if self.iterations >= self.agent.iteration_cap:
            return Stop(RunStatus.FAILED, "max_iterations", "IterationCapReached", f"Stopped after {self.iterations} model calls (cap {self.agent.iteration_cap}).")
        started = self.run.started_at
        if started and (timezone.now() - started).total_seconds() > self.agent.wall_clock_limit_s:
            return Stop(RunStatus.FAILED, "wall_clock", "WallClockLimit", f"Ran longer than {self.agent.wall_clock_limit_s}s.")
        return None

    def call_model(self, messages: list[MessageRecord]) -> str | None:
        # Here, not at the top: the anthropic SDK takes 0.3-0.9 s to import, and web processes import
        # this module (they enqueue runs) but never call a model. Workers preload it (agentops.worker).
        from agentops.llm import gateway

        stop = self.breaker()
        if stop:
            return self.finish(stop)
        prompt = self.agent.resolve_prompt()
        system, prompt_version_id = prompt.system, prompt.version_id
        offered = self.offered_tools()

        tools = [to_anthropic(o.spec) for o in offered.values()]
        api_messages = build_api_messages(messages)
        model = gateway.route_model(model=self.agent.model, routing=self.agent.routing or {}, run_input=self.run.input)
        bound = gateway.input_tokens_bound(system=system, messages=api_messages, tools=tools)
        fallback = self.agent.fallback_model if self.agent.fallback_model and self.agent.fallback_model != model else None
        try:
            # The call may end on the fallback model: reserve for the dearer of the two.
            reservation = costs.reserve(run=self.run, model=model, max_tokens=self.agent.max_tokens, input_tokens_bound=bound,
                                        fallback_model=fallback)
        except costs.CostCapExceeded as exc:
            return self.finish(Stop(RunStatus.CAPPED, exc.scope, "CostCapExceeded", str(exc)))
        except costs.UnknownModelPrice as exc:
            return self.finish(Stop(RunStatus.FAILED, "model_not_priced", "UnknownModelPrice", str(exc)))
        except costs.ModelNotAllowed as exc:
            return self.finish(Stop(RunStatus.FAILED, "model_not_allowed", "ModelNotAllowed", str(exc)))
        scenario = (self.run.metadata or {}).get("scenario") if isinstance(self.run.metadata, dict) else None
        attrs = {
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic", "gen_ai.request.model": model,
            "gen_ai.request.max_tokens": self.agent.max_tokens, "gen_ai.conversation.id": str(self.run.pk),
            "agentops.prompt_version_id": prompt_version_id,
        }
        settled = False
        # Set once the API answered: from then on the call is billed, whatever happens to the step.
        answered: tuple[dict[str, Any], str, str] | None = None
        try:
            with self.tracer.span(f"chat {model}", attrs) as span:
                t_model = time.perf_counter()
                try:
                    result = gateway.create_message(
                        model=model, fallback_model=fallback, system=system,
                        messages=api_messages, tools=tools, max_tokens=self.agent.max_tokens, scenario=scenario,
                        conversation_key=f"run-{self.run.pk}",
                        on_delta=deltas.DeltaRelay(self.run.pk, messages[-1].seq + 1),
                        cache_ttl=getattr(self.agent, "cache_ttl", "5m"),
                    )
                except gateway.ModelUnavailable as exc:
                    span["error.type"] = exc.error_type
                    costs.release(reservation=reservation)
                    settled = True
                    return self.reschedule(exc)
                except gateway.ModelRequestError as exc:
                    span["error.type"] = exc.error_type
                    costs.release(reservation=reservation)
                    settled = True
                    return self.finish(Stop(RunStatus.FAILED, "model_error", exc.error_type, str(exc)))
                self._model_s = time.perf_counter() - t_model
                message = result.message
                usage = message.usage.model_dump(mode="json") if message.usage else {}
                answered = (usage, result.model, message.id)
                span.update({
                    "gen_ai.response.model": message.model, "gen_ai.response.id": message.id,
                    "gen_ai.response.finish_reasons": [message.stop_reason or ""],
                    "gen_ai.usage.input_tokens": (usage.get("input_tokens") or 0) + (usage.get("cache_read_input_tokens") or 0) + (usage.get("cache_creation_input_tokens") or 0),
                    "gen_ai.usage.output_tokens": usage.get("output_tokens") or 0,
                    "gen_ai.usage.cache_read.input_tokens": usage.get("cache_read_input_tokens") or 0,
                    "gen_ai.usage.cache_creation.input_tokens": usage.get("cache_creation_input_tokens") or 0,
                    "agentops.latency_ms": round(result.latency_ms, 2), "agentops.fell_back": result.fell_back,
                })
            content = [block.to_dict() for block in message.content]
            flags = evaluators.evaluate_assistant_turn(content)
            with transaction.atomic():
                # The lease fence, the step's run update and the relaxed commit in one round trip.
                lease.fence_relaxed(self.run.pk, self.worker_id, iterations_inc=1, model_used=result.model,
                                    prompt_version_id=prompt_version_id)
                entry = costs.settle(reservation=reservation, usage=usage, model=result.model, response_id=message.id)
                span_cost = getattr(entry, "cost", None)
                if span_cost is not None and self.tracer.pending:
                    self.tracer.pending[-1].attributes["agentops.cost_usd"] = str(span_cost)
                self.event("turn", role="assistant", seq=messages[-1].seq + 1, stop_reason=message.stop_reason, model=result.model,
                           cost=str(span_cost) if span_cost is not None else None, flags=flags)
                turn = self.store.add_message(
                    self.run, seq=messages[-1].seq + 1, role="assistant", content=content, model=result.model, stop_reason=message.stop_reason or "", response_id=message.id,
                    usage=usage, flags=flags,
                )
                self.flush()
            settled = True
            self.iterations += 1
            self.load_log().append(turn)
        except IntegrityError:
            raise lease.LeaseLost(self.run.pk)
        finally:
            if not settled and answered is not None:
                # The step was not persisted (lease lost, database error) but the call was made and
                # billed: record its real cost rather than giving the reservation back. If even that
                # fails, the reservation stays open and the reconciler charges its worst case.
                try:
                    costs.settle(reservation=reservation, usage=answered[0], model=answered[1], response_id=answered[2])
                except Exception:
                    log.exception("settling an answered call failed; left open for the reconciler")
            elif not settled:
                costs.release(reservation=reservation)
        return None

    def reschedule(self, exc: Any) -> str:
        """The SDK's retries are exhausted (429/5xx/529/connection): wait and resume, never fail."""
        n = self.store.reschedules(self.run.pk)
        if n >= MAX_RESCHEDULES:
            return self.finish(Stop(RunStatus.FAILED, "model_unavailable", exc.error_type, str(exc)))
        delay = max(float(exc.retry_after_s or 0), RESCHEDULE_BACKOFF[min(n, len(RESCHEDULE_BACKOFF) - 1)])
        with transaction.atomic():
            requeued = lease.release(
                self.run.pk, self.worker_id, unless_stop_requested=True, count_reschedule=True, status=RunStatus.QUEUED,
                not_before=timezone.now() + timedelta(seconds=delay), error_type=exc.error_type, error_message=str(exc)[:2000],
            )
            if requeued:
                self.event("rescheduled", error_type=exc.error_type, delay_s=delay)
                self.flush()
                hooks.run_queue().enqueue_run(self.run, delay_s=delay)
        if not requeued:
            # A cancel or pause came in during the failing call: apply it now, not after the backoff.
            if not self.store.holds_lease(self.run.pk, self.worker_id):
                return "lease_lost"
            return self._control() or "lease_lost"
        return "rescheduled"

    # -- tool calls ------------------------------------------------------------------
    def answer_tools(self, messages: list[MessageRecord], last: MessageRecord, tool_uses: list[dict[str, Any]]) -> Stop | None:
        """Produce exactly one tool_result per tool_use and persist them as the next user turn."""
        ids = [b["id"] for b in tool_uses]
        calls = self.store.tool_calls(self.run.pk, ids)
        escalations: dict[str, hooks.EscalationRecord] = {}
        unknown: dict[str, hooks.EscalationRecord] = {}
        for e in hooks.escalation_store().for_run(run_id=self.run.pk, tool_use_ids=ids):
            (unknown if e.kind == hooks.KIND_OUTCOME_UNKNOWN else escalations)[e.tool_use_id] = e
        offered = self.offered_tools()
        after_injection = "injection" in (messages[-2].flags if len(messages) >= 2 else [])
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
                spec = registry.get_tool(name)
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
                kind = "unknown_tool" if registry.get_tool(name) is None else "tool_not_granted"
                results.append(self.refuse(tool_use_id, name, arguments, kind, f"Tool '{name[:100]}' is not available to this agent. Available: {', '.join(sorted(offered)) or 'none'}."))
                continue
            if repetition_count(messages, name, arguments) >= self.agent.repetition_threshold:
                breaker = Stop(RunStatus.FAILED, "repetition", "RepetitionBreaker",
                               f"{name} was called with the same arguments {self.agent.repetition_threshold} times.")
                results.append(self.refuse(tool_use_id, name, arguments, "not_executed", f"Not executed: the run stopped ({breaker.outcome})."))
                continue
            try:
                args = registry.validate_arguments(entry.spec, arguments, (entry.grant.allow if entry.grant else {}) or {})
            except registry.ToolError as exc:
                results.append(self.refuse(tool_use_id, name, arguments, exc.error_class, str(exc)))
                continue
            escalation = escalations.get(tool_use_id)
            if entry.spec.handoff:
                results.append(self.handoff(tool_use_id, name, args, escalation))
                continue
            # A human's "retry" of an unknown outcome is the approval: it is not gated again.
            reason = None if retry_decided else grants.gate_reason(self.run, entry, args, after_injection=after_injection)
            if reason:
                decided = self.gate(tool_use_id, entry, args, reason, escalation)
                if decided is not None:
                    results.append(decided)
                    continue
            outcome_block, flags = self.execute(tool_use_id, entry, args, call)
            results.append(outcome_block)
            result_flags.extend(flags)
        seq = last.seq + 1
        self.event("turn", role="user", seq=seq, tool_results=len(results), flags=sorted(set(result_flags)))
        self.append_message(seq, "user", results, flags=sorted(set(result_flags)))
        return breaker

    def _record(self, tool_use_id: str, name: str, arguments: Any, *, durable: bool = False, **fields: Any) -> None:
        """Upsert the idempotency-ledger row; ``durable`` before an effect leaves the database."""
        row = {"tool_name": name[:200], "arguments": redact_obj(arguments if isinstance(arguments, dict) else {"_raw": str(arguments)[:2000]}),
               "arguments_sha256": arguments_sha256(arguments) if isinstance(arguments, dict) else ""}
        row.update(fields)
        with transaction.atomic():
            if not durable:
                relax_commit()
            self.store.record_tool_call(self.run, tool_use_id, row)

    def refuse(self, tool_use_id: str, name: str, arguments: Any, error_class: str, message: str) -> dict[str, Any]:
        content = json.dumps({"error": {"type": error_class, "message": message}})
        self._record(tool_use_id, name, arguments, status=ToolCallStatus.REFUSED, result=content, is_error=True, error_class=error_class, finished_at=timezone.now())
        self.event("tool_refused", tool=name[:200], tool_use_id=tool_use_id, error=error_class)
        return _result_block(tool_use_id, content, True)

    def execute(self, tool_use_id: str, entry: grants.Offered, args: dict[str, Any], call: ToolCallRecord | None) -> tuple[dict[str, Any], list[str]]:
        spec = entry.spec
        self._record(tool_use_id, spec.name, args, status=ToolCallStatus.STARTED, side_effect=spec.side_effect,
                     durable=spec.side_effect != "read")
        self.event("tool_start", tool=spec.name, tool_use_id=tool_use_id)
        ctx = registry.ToolContext(tenant_id=self.run.tenant_id, run_id=self.run.pk, agent_id=self.agent.pk, tool_use_id=tool_use_id,
                                   allow=(entry.grant.allow if entry.grant else {}) or {})
        with self.tracer.span(f"execute_tool {spec.name}", {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": spec.name,
                                                            "gen_ai.tool.call.id": tool_use_id, "gen_ai.tool.type": "function",
                                                            "agentops.side_effect": spec.side_effect}) as span:
            outcome = registry.execute(spec, ctx, args)
            if outcome.is_error:
                span["error.type"] = outcome.error_class or "tool_error"
            span["agentops.attempts"] = outcome.attempts
        content = registry.truncate_output(outcome.content, settings.TOOL_OUTPUT_LIMIT_CHARS)
        flags = evaluators.injection_flags(content)
        self._record(tool_use_id, spec.name, args, status=ToolCallStatus.ERROR if outcome.is_error else ToolCallStatus.SUCCEEDED,
                     result=content, is_error=outcome.is_error, error_class=outcome.error_class or "", attempts=outcome.attempts,
                     duration_ms=outcome.duration_ms, result_size=outcome.size, finished_at=timezone.now(), flags=flags)
        self.event("tool_end", tool=spec.name, tool_use_id=tool_use_id, is_error=outcome.is_error, duration_ms=round(outcome.duration_ms, 2), flags=flags)
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


def _result_block(tool_use_id: str, content: Any, is_error: bool) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_use_id, "content": content if isinstance(content, str) else json.dumps(content)}
    if is_error:
        block["is_error"] = True
    return block


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
