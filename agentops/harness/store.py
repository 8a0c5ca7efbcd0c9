"""What the harness reads and writes about a run: an interface it owns, implemented by ``runs``.

The loop, the lease, the grants check and the tracer talk to a :class:`RunStore`; the ``runs`` app
implements it over its models (``runs.store``) and registers it in ``RunsConfig.ready()`` through
:mod:`agentops.harness.hooks`. Every method is one statement (or none; ``add_rows`` sends its INSERTs as one), so the interface adds no
round trip to a step: the step's statement count is checked by tests/runtime/test_step_statements.py.

Records are read through Protocols of read-only properties: a model instance satisfies them as is.
What the harness writes in bulk (events, spans) it buffers as the plain rows below.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from django.db import models
from django.utils import timezone


class RunStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    AWAITING_APPROVAL = "awaiting_approval"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CAPPED = "capped"
    CANCELLED = "cancelled"


TERMINAL_STATUSES = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CAPPED, RunStatus.CANCELLED})


class ToolCallStatus(models.TextChoices):
    STARTED = "started"
    SUCCEEDED = "succeeded"
    ERROR = "error"
    REFUSED = "refused"
    GATED = "gated"
    REJECTED = "rejected"
    # Left ``started`` by a crash, on a tool not declared idempotent: a human decides.
    OUTCOME_UNKNOWN = "outcome_unknown"


class TenantRecord(Protocol):
    @property
    def gate_irreversible_tools(self) -> bool: ...


class AgentRecord(Protocol):
    """The agent's settings the loop reads (``runs.models.Agent``)."""

    @property
    def pk(self) -> Any: ...
    @property
    def name(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def routing(self) -> Any: ...
    @property
    def fallback_model(self) -> str: ...
    @property
    def max_tokens(self) -> int: ...
    @property
    def tools(self) -> Any: ...
    @property
    def iteration_cap(self) -> int: ...
    @property
    def repetition_threshold(self) -> int: ...
    @property
    def wall_clock_limit_s(self) -> int: ...
    @property
    def flag_policy(self) -> Any: ...  # what each online evaluator flag does (harness.evaluators.policy)

    def resolve_prompt(self, run: Any = None) -> Any:
        """agentops.harness.prompting.ResolvedPrompt: the version ``run`` is pinned to (pinning it now
        from the agent's label at the run's first call), or the inline text."""
        ...


class RunRecord(Protocol):
    """A leased run as the loop reads it, with its agent and tenant loaded (``runs.models.Run``)."""

    @property
    def pk(self) -> Any: ...
    @property
    def tenant_id(self) -> Any: ...
    @property
    def agent_id(self) -> Any: ...
    @property
    def agent(self) -> AgentRecord: ...
    @property
    def tenant(self) -> TenantRecord: ...
    @property
    def submitter_role(self) -> str: ...
    @property
    def input(self) -> str: ...
    @property
    def metadata(self) -> Any: ...
    @property
    def attempt(self) -> int: ...
    @property
    def iterations(self) -> int: ...
    @property
    def started_at(self) -> datetime | None: ...
    @property
    def trace_id(self) -> str: ...
    # The prompt version pinned on the run (set by the resolver at the first model call).
    prompt_version_id: int | None
    prompt_version_number: int | None
    prompt_sha256: str
    @property
    def flags(self) -> Any: ...  # every online evaluator flag the run's turns raised


class MessageRecord(Protocol):
    """One turn of the durable log."""

    @property
    def seq(self) -> int: ...
    @property
    def role(self) -> str: ...
    @property
    def content(self) -> Any: ...
    @property
    def stop_reason(self) -> str: ...
    @property
    def flags(self) -> Any: ...
    @property
    def scores(self) -> Any: ...  # online evaluator scores of the turn, {name: 0..1}


class ToolCallRecord(Protocol):
    """A row of the idempotency ledger, keyed (run, tool_use_id)."""

    @property
    def status(self) -> str: ...
    @property
    def result(self) -> Any: ...
    @property
    def is_error(self) -> bool: ...


class GrantRecord(Protocol):
    """A tool grant (see agentops.harness.grants for how the most specific one wins)."""

    @property
    def tool_name(self) -> str: ...
    @property
    def agent_id(self) -> Any: ...
    @property
    def role(self) -> str: ...
    @property
    def requires_approval(self) -> bool: ...
    @property
    def allow(self) -> Any: ...
    @property
    def approval_over(self) -> Any: ...


@dataclass
class EventRow:
    """A run event to append (the SSE stream and the live page read them)."""

    type: str
    data: dict[str, Any]
    at: datetime = field(default_factory=timezone.now)


@dataclass
class SpanRow:
    """A finished span, kept for the console's waterfall."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    started_at: datetime
    ended_at: datetime
    duration_ms: float
    attributes: dict[str, Any]
    status: str


@dataclass(frozen=True)
class Control:
    """What an operator asked of a run since the step began."""

    cancel_requested: bool
    pause_requested: bool
    runs_disabled: bool  # the agent's or the tenant's kill switch


@dataclass
class TurnExtras:
    """What :meth:`RunStore.add_turn` hands back beside the turn (PostgreSQL; left empty elsewhere)."""

    # The run's stop flags as the fence's UPDATE saw them, under the run row's lock, at the end of
    # the step: the next step's control check (issue 14: one read fewer per step).
    control: Control | None = None
    results: list[list[tuple[Any, ...]]] = field(default_factory=list)  # rows of each ``before`` statement, in order


class RunStore(Protocol):
    # -- the lease (agentops.harness.lease wraps these) ------------------------------
    def acquire(self, run_id: int, worker_id: str) -> RunRecord | None:
        """Take the lease if the run is runnable; the run with agent and tenant loaded, or None."""

    def fence(self, run_id: int, worker_id: str, **fields: object) -> bool:
        """Renew the lease (and set ``fields``); False when another worker owns the run."""

    def fence_relaxed(self, run_id: int, worker_id: str, *, iterations_inc: int = 0, model_used: str | None = None,
                      prompt_version_id: int | None = None, flags: list[str] | None = None) -> bool:
        """:meth:`fence` and ``synchronous_commit = off`` for this transaction, in one round trip;
        ``flags`` (not None) sets the run's online evaluator flags in the same statement."""

    def release(self, run_id: int, worker_id: str, *, unless_stop_requested: bool = False, count_reschedule: bool = False,
                **fields: object) -> bool:
        """Give the lease up, setting ``fields``; False when it was not ours (or a stop was requested)."""

    def holds_lease(self, run_id: int, worker_id: str) -> bool: ...

    # -- the run row -----------------------------------------------------------------
    def control(self, run_id: int) -> Control: ...

    def attempt(self, run_id: int) -> int: ...

    def reschedules(self, run_id: int) -> int: ...

    def set_trace_id(self, run_id: int, trace_id: str) -> None:
        """Only when the run has none yet."""

    def set_flags(self, run_id: int, flags: list[str]) -> None:
        """The run's online evaluator flags (the union of its turns'), outside a step (the judge job)."""

    # -- the log and the ledger --------------------------------------------------------
    def messages(self, run_id: int) -> Sequence[MessageRecord]:
        """The durable log, in order."""

    def add_message(self, run: RunRecord, *, seq: int, role: str, content: list[dict[str, Any]], **fields: Any) -> MessageRecord:
        """Insert a turn; IntegrityError when ``seq`` is taken."""

    def add_turn(self, run: RunRecord, *, seq: int, role: str, content: list[dict[str, Any]], fields: dict[str, Any],
                 tool_calls: Sequence[tuple[str, dict[str, Any]]] = (), events: Iterable[EventRow] = (),
                 spans: Iterable[SpanRow] = (), fence: tuple[str, dict[str, Any]] | None = None,
                 before: Sequence[tuple[str, Sequence[Any]]] = (), extras: TurnExtras | None = None) -> MessageRecord | None:
        """:meth:`fence_relaxed` (``fence``: worker id, keyword arguments), the ``before`` statements (SQL,
        parameters: the step's cost settlement), :meth:`add_message` (``fields`` its keyword fields) and
        :meth:`add_rows` in one round trip; None when the fence failed (roll back). ``extras`` receives
        the run's control flags as the fence saw them and the ``before`` statements' rows."""

    def tool_calls(self, run_id: int, tool_use_ids: Sequence[str]) -> Mapping[str, ToolCallRecord]: ...

    def record_tool_call(self, run: RunRecord, tool_use_id: str, fields: dict[str, Any]) -> None:
        """Upsert the ledger row for (run, tool_use_id) in one statement."""

    def record_tool_calls(self, run: RunRecord, calls: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Upsert several ledger rows ``(tool_use_id, fields)`` in one statement (per set of fields)."""

    def add_events(self, run: RunRecord, events: Iterable[EventRow]) -> None: ...

    def add_spans(self, run: RunRecord, spans: Iterable[SpanRow]) -> None: ...

    def add_rows(self, run: RunRecord, *, tool_calls: Sequence[tuple[str, dict[str, Any]]] = (), events: Iterable[EventRow] = (),
                 spans: Iterable[SpanRow] = ()) -> None:
        """Ledger rows (as :meth:`record_tool_calls`), events and spans, in one round trip."""

    # -- grants ------------------------------------------------------------------------
    def grants(self, run: RunRecord, tool_names: Sequence[str]) -> Sequence[GrantRecord]:
        """The tenant's grants of these tools that may apply to the run's agent and role."""
