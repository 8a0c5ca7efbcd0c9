"""The agent loop: one RQ job drives one run until it finishes, must wait, or is handed back.

(Just over 400 lines on purpose: the step's model half reads best in one place; the tool half is
``tool_turn.py`` and context trimming ``context.py``.)

Every step is persisted before the next starts, and the durable message log — not process
memory — is what the next step reads. A step is one of:

* the run has no log yet → write the user's input as the first message;
* the last message is the assistant's with ``tool_use`` blocks → answer every one of them with
  exactly one ``tool_result`` (executed, refused, rejected or reused from the idempotency
  ledger), or stop to wait for a human (:mod:`agentops.harness.tool_turn`);
* the last message is the assistant's without tool calls → the run succeeded;
* the last message is the user's → check breakers, reserve cost, call the model, settle, persist.

Failures have typed outcomes (``failed: max_iterations``, ``capped: tenant_month``, …) and every
stopped run stays resumable: its log is consistent (no ``tool_use`` without its ``tool_result``).
The run's rows are read and written through the harness's store interface (:mod:`agentops.harness.store`).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.utils import timezone

from agentops.harness import costs, deltas, evaluators, extract, grants, hooks, lease, online, shutdown
from agentops.harness.context import plan_context
from agentops.harness.durability import relax_commit
from agentops.harness.store import (
    TERMINAL_STATUSES,
    Control,
    EventRow,
    MessageRecord,
    RunRecord,
    RunStatus,
    TurnExtras,
)
from agentops.harness.tool_turn import Stop, ToolTurn, Wait
from agentops.harness.tracing import RunTracer
from agentops.logs import bind
from agentops.memory import facts as memory
from agentops.memory import journal
from agentops.memory.models import FailureEntry
from agentops.redact import redact_obj
from agentops.tools.registry import to_anthropic

log = logging.getLogger(__name__)

# Backoff for re-scheduling a run after the SDK's own retries were exhausted (seconds).
RESCHEDULE_BACKOFF = [5, 15, 60, 300, 900]
MAX_RESCHEDULES = 20
# A prompt version's parameters sent to the model as they are (max_tokens is handled apart: it sizes the reservation).
SAMPLING_PARAMS = ("temperature", "top_p", "top_k", "stop_sequences")


def sdk_sampling(sampling: dict[str, Any]) -> dict[str, Any]:
    """The SDK keywords for a version's sampling parameters: the SDK (2.x) takes ``stop_sequences`` but no longer
    names temperature/top_p/top_k, so those go in ``extra_body`` (models that refuse them answer 400 → model_error)."""
    kwargs: dict[str, Any] = {}
    if "stop_sequences" in sampling:
        kwargs["stop_sequences"] = sampling["stop_sequences"]
    extra = {k: v for k, v in sampling.items() if k != "stop_sequences"}
    if extra:
        kwargs["extra_body"] = extra
    return kwargs


def worker_identity() -> str:
    """A lease owner id unique to this job: host, pid and a random part. The pid alone was unique
    while every job ran in a work horse of its own; a worker now runs its jobs in one process
    (agentops.worker), and two jobs of one worker — a run's retry chain resumed elsewhere and a
    reconciler's job — must never pass for the same owner (the lease lets its owner back in)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(4)}"


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


class RunDriver(ToolTurn):
    def __init__(self, run: RunRecord, worker_id: str):
        self.run = run
        self.agent = run.agent
        self.store = hooks.run_store()
        self.worker_id = worker_id
        self.tracer = RunTracer(run)
        self.events: list[EventRow] = []
        self.pending_calls = []  # finished ledger rows of read-only tools, written by flush() (tool_turn.execute)
        self._trace_id_saved = False
        # Set by benchmarks: a list that receives (step kind, seconds, model seconds) per step.
        self.step_log: list[tuple[str, float, float]] | None = None
        self._model_s = 0.0
        self._next_control: Control | None = None  # see _control
        # Process memory is a cache of the durable log: loaded once per job, then appended to as
        # each step commits. The lease fence on every write guarantees nobody else appends.
        self._log: list[MessageRecord] | None = None
        self.iterations = run.iterations
        self._offered: tuple[float, dict[str, grants.Offered]] | None = None
        # Online evaluators: the run's flags so far, and the scores of the tool results being answered.
        self.flags = online.RunFlags(run)
        self._result_scores: dict[str, float] = {}

    # -- bookkeeping -----------------------------------------------------------------
    def event(self, type_: str, **data: Any) -> None:
        self.events.append(EventRow(type=type_, data=redact_obj(data)))

    def flush(self) -> None:
        """Write buffered ledger rows, events and spans (in one round trip); callers hold the transaction and the fence."""
        if self.pending_calls or self.events or self.tracer.pending:
            self.store.add_rows(self.run, tool_calls=self.pending_calls, events=self.events, spans=self.tracer.pending)
            self.pending_calls, self.events, self.tracer.pending = [], [], []

    def add_turn(self, seq: int, role: str, content: list[dict[str, Any]], fence: dict[str, Any],
                 before: Sequence[tuple[str, Sequence[Any]]] = (), extras: TurnExtras | None = None, **fields: Any) -> MessageRecord:
        """The lease fence (lease.fence_relaxed's arguments), the ``before`` statements (the settlement), then
        the turn with the buffered ledger rows, events and spans, in one round trip; callers hold the
        transaction. LeaseLost when the fence fails: the exception rolls the transaction back, so nothing of
        the step is written. The run's control flags the fence saw serve the next step's check."""
        extras = extras if extras is not None else TurnExtras()
        msg = self.store.add_turn(self.run, seq=seq, role=role, content=content, fields=fields, tool_calls=self.pending_calls,
                                  events=self.events, spans=self.tracer.pending, fence=(self.worker_id, fence), before=before,
                                  extras=extras)
        if msg is None:
            raise lease.LeaseLost(self.run.pk)
        self.pending_calls, self.events, self.tracer.pending = [], [], []
        self._next_control = extras.control
        return msg

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
                msg = self.add_turn(seq, role, content, {"flags": self.flags.new(fields.get("flags") or ())}, **fields)
                online.after_turn(self.run, msg)
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
        if self.tracer.trace_id and not self.run.trace_id:
            # In the release's UPDATE rather than a statement (and a durable commit) of its own after the run.
            fields["trace_id"], self._trace_id_saved = self.tracer.trace_id, True
        with transaction.atomic():
            self.event("status", status=stop.status, outcome=stop.outcome)
            self.flush()
            if stop.status in TERMINAL_STATUSES:
                online.open_review(self.run, self.flags.all(), stop.outcome)
                hooks.run_queue().close_dangling(run=self.run, error_type=f"run_{stop.status}", message=f"Not executed: the run stopped ({stop.outcome}).")
            if stop.status == RunStatus.CANCELLED:
                hooks.escalation_store().cancel_pending(run=self.run, now=now)
            lease.release(self.run.pk, self.worker_id, **fields)
        if stop.status in TERMINAL_STATUSES:
            hooks.run_finished(self.run.pk, stop.status, self.run.metadata)
        return stop.status

    def crashed(self, exc: Exception) -> None:
        self.events, self.tracer.pending, self.pending_calls = [], [], []
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
            if self.run.prompt_version_id:  # pinned by the resolver at the first model call (or at submission)
                root.update({"agentops.prompt_version_id": self.run.prompt_version_id, "agentops.prompt_version": self.run.prompt_version_number,
                             "agentops.prompt_sha256": self.run.prompt_sha256})
        if self.tracer.pending:
            with transaction.atomic():
                relax_commit()  # spans only: nothing to fsync for (agentops/harness/durability.py)
                self.tracer.flush()
        if self.tracer.trace_id and not self.run.trace_id and not self._trace_id_saved:
            self.store.set_trace_id(self.run.pk, self.tracer.trace_id)
        return outcome

    def _control(self) -> str | None:
        # The flags the last step's fence returned, read under the run row's lock as that step committed
        # (microseconds ago): a stop requested since is seen at the next step, as one requested just
        # after a read here would be. A step that wrote no turn (or SQLite) reads them.
        control, self._next_control = self._next_control, None
        if control is None:
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
            content = [{"type": "text", "text": self.run.input}]
            # The agent's known failures (agentops.memory.journal), as data after the input; an eval run
            # is kept reproducible: it neither reads nor writes the journal.
            note = "" if self.is_eval else journal.note(tenant_id=self.run.tenant_id, agent_id=self.agent.pk, offered=self.offered_tools())
            if note:
                content.append({"type": "text", "text": note})
                self.event("known_failures", lines=note.count("\n- ") + 1)
            self.append_message(0, "user", content)
            return None
        last = messages[-1]
        failing = online.failing_flag(self.agent, last.flags)
        if failing:
            return self.finish(Stop(RunStatus.FAILED, failing, "EvaluatorFlag", f"An online evaluator flagged turn {last.seq} '{failing}' and this agent's policy fails the run."))
        if last.role == "assistant":
            tool_uses = [b for b in last.content if b.get("type") == "tool_use"]
            if not tool_uses:
                text = "\n".join(b.get("text", "") for b in last.content if b.get("type") == "text").strip()
                feedback = online.validate_final(self.agent.resolve_prompt(), text, messages, run=self.run)
                if feedback is not None:
                    if feedback.exhausted:
                        self.journal(journal.FINAL_ANSWER, {}, FailureEntry.Kind.VALIDATION, "OutputValidation", feedback.message)
                        return self.finish(Stop(RunStatus.FAILED, "validation", "OutputValidation", feedback.message, result=text))
                    self.event("validation_failed", seq=last.seq, attempt=feedback.attempt, failures=feedback.failures)
                    self.append_message(last.seq + 1, "user", [{"type": "text", "text": feedback.message}], flags=["validation_failed"])
                    return None
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
        # Pinned on the run at its first call: a label moved later never changes this run's version.
        prompt = self.agent.resolve_prompt(self.run)
        system, prompt_version_id = self.with_memory(prompt.system, first_call=len(messages) == 1), prompt.version_id
        max_tokens = int(prompt.params.get("max_tokens") or self.agent.max_tokens)
        sampling = {k: v for k, v in prompt.params.items() if k in SAMPLING_PARAMS}
        offered = self.offered_tools()
        if prompt.tools is not None:  # a version's tool set narrows the grants, never widens them
            offered = {name: o for name, o in offered.items() if name in prompt.tools}

        tools = [to_anthropic(o.spec) for o in offered.values()]
        api_messages, newly_dropped = plan_context(messages)
        model = gateway.route_model(model=prompt.model or self.agent.model, routing=self.agent.routing or {}, run_input=self.run.input)
        if newly_dropped:
            # Before these turns leave the context for good: their facts, through a priced, capped call.
            extract.on_trim(self.run, messages[newly_dropped.start:newly_dropped.stop], model=model, event=self.event, gateway=gateway)
        bound = gateway.input_tokens_bound(system=system, messages=api_messages, tools=tools)
        fallback = self.agent.fallback_model if self.agent.fallback_model and self.agent.fallback_model != model else None
        try:
            # The call may end on the fallback model: reserve for the dearer of the two.
            reservation = costs.reserve(run=self.run, model=model, max_tokens=max_tokens, input_tokens_bound=bound,
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
            "gen_ai.request.max_tokens": max_tokens, "gen_ai.conversation.id": str(self.run.pk),
            "agentops.prompt_version_id": prompt_version_id,
            **{f"gen_ai.request.{k}": v for k, v in sampling.items()},
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
                        messages=api_messages, tools=tools, max_tokens=max_tokens, scenario=scenario,
                        conversation_key=f"run-{self.run.pk}", sampling=sdk_sampling(sampling),
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
            evaluated = evaluators.evaluate_assistant_turn(content, log=[(m.role, m.content) for m in messages], tool_schemas=online.tool_schemas(offered))
            flags, scores = evaluated.flags, online.nonzero(evaluated.scores)
            with transaction.atomic():
                # The lease fence (with the step's run update and the relaxed commit) travels with the turn's
                # INSERT (add_turn): when it fails, LeaseLost rolls this settlement back with the rest, and
                # the finally below settles the answered call on its own, as when the fence came first.
                fence = {"iterations_inc": 1, "model_used": result.model, "flags": self.flags.new(flags), "prompt_version_id": prompt_version_id}
                # The settlement goes in the turn's round trip (issue 14), or on its own where it is not one statement.
                prepared = costs.prepare_settle(reservation=reservation, usage=usage, model=result.model, response_id=message.id)
                if prepared is None:
                    span_cost = getattr(costs.settle(reservation=reservation, usage=usage, model=result.model, response_id=message.id), "cost", None)
                else:
                    span_cost = prepared.cost
                if span_cost is not None and self.tracer.pending:
                    self.tracer.pending[-1].attributes["agentops.cost_usd"] = str(span_cost)
                self.event("turn", role="assistant", seq=messages[-1].seq + 1, stop_reason=message.stop_reason, model=result.model,
                           cost=str(span_cost) if span_cost is not None else None, flags=flags)
                extras = TurnExtras()
                turn = self.add_turn(
                    messages[-1].seq + 1, "assistant", content, fence, before=[(prepared.sql, prepared.params)] if prepared else (),
                    extras=extras, model=result.model, stop_reason=message.stop_reason or "", response_id=message.id,
                    usage=usage, flags=flags, scores=scores,
                )
                if prepared is not None:
                    prepared.finish(extras.results[0])
                online.after_turn(self.run, turn)
            settled = True
            self.iterations += 1
            self.load_log().append(turn)
            self.fresh_turn_seq = turn.seq  # its tool calls have no ledger rows yet (tool_turn.answer_tools)
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

    def with_memory(self, system: str, *, first_call: bool) -> str:
        """The system prompt with the facts recalled about the run's subject (agentops.memory). Every call
        of the run recalls as of its start, so the block is stable (and cached) unless a fact is erased."""
        now = timezone.now()
        recalled = memory.for_run(tenant_id=self.run.tenant_id, metadata=self.run.metadata, run_input=self.run.input,
                                  token_budget=getattr(self.agent, "memory_token_budget", 0), now=now, started_at=self.run.started_at)
        if recalled is None:
            return system
        if first_call and recalled.fact_ids:
            self.event("memory_recalled", subject=recalled.subject, fact_ids=list(recalled.fact_ids))
            memory.touch(tenant_id=self.run.tenant_id, fact_ids=recalled.fact_ids, now=now)
        return f"{system}\n\n{recalled.block}" if recalled.block else system

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
