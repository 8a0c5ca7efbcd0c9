"""What the harness needs from the apps above it, as a narrow interface those apps register at start-up.

The loop decides; storing a run (a ``RunStore``, see :mod:`agentops.harness.store`), enqueueing it,
closing dangling tool calls and keeping escalations are jobs of the
``runs`` and ``escalations`` apps, which sit above the harness and fill these slots in their
``AppConfig.ready()``. The harness never imports them: an unset slot fails loudly at first use.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from agentops.harness.store import RunStore

# Escalation kinds and statuses as the loop reads them (the escalations app's model uses the same strings).
KIND_TOOL = "tool_call"
KIND_HANDOFF = "handoff"
KIND_OUTCOME_UNKNOWN = "outcome_unknown"
KIND_REVIEW = "review"
PENDING = "pending"
APPROVED = "approved"


class EscalationRecord(Protocol):
    """The fields of an escalation the loop reads to act on a human decision."""

    pk: Any
    kind: str
    tool_use_id: str
    arguments_sha256: str
    status: str
    decision: str
    resolution: str
    comment: str


class RunQueue(Protocol):
    def enqueue_run(self, run: Any, *, delay_s: float = 0) -> None: ...

    def close_dangling(self, *, run: Any, error_type: str, message: str) -> None: ...

    def enqueue_judge(self, *, run: Any, seq: int, evaluator: str) -> None: ...


class EscalationStore(Protocol):
    def for_run(self, *, run_id: int, tool_use_ids: Iterable[str]) -> Iterable[EscalationRecord]: ...

    def open(self, *, run: Any, kind: str, tool_use_id: str, tool_name: str, arguments: dict[str, Any], grant: Any,
             gate_reason: str, reason: str = "", context_summary: str = "", urgency: str = "") -> EscalationRecord: ...

    def reopen(self, *, escalation: EscalationRecord, gate_reason: str) -> EscalationRecord: ...

    def cancel_pending(self, *, run: Any, now: Any) -> None: ...


# Told (run id, status) once a run's terminal status is committed, in the worker that finished it.
# (run id, final status, the run's metadata): a listener decides from the metadata whether the run
# is its business without a query (every run of every tenant ends through here).
RunFinished = Callable[[int, str, Any], None]


@dataclass
class _Slots:
    store: RunStore | None = None
    runs: RunQueue | None = None
    escalations: EscalationStore | None = None
    run_finished: list[RunFinished] = field(default_factory=list)


_slots = _Slots()
log = logging.getLogger(__name__)


def register(*, store: RunStore | None = None, runs: RunQueue | None = None, escalations: EscalationStore | None = None,
             run_finished: RunFinished | None = None) -> None:
    """Called from an app's ``AppConfig.ready()``."""
    if store is not None:
        _slots.store = store
    if runs is not None:
        _slots.runs = runs
    if escalations is not None:
        _slots.escalations = escalations
    if run_finished is not None and run_finished not in _slots.run_finished:
        _slots.run_finished.append(run_finished)


def run_finished(run_id: int, status: str, metadata: Any = None) -> None:
    """Tell the listeners a run ended. A listener's failure is logged, never the run's: listeners
    must also be repaired by a sweep of their own (a worker can die between commit and this call)."""
    for listener in _slots.run_finished:
        try:
            listener(run_id, status, metadata)
        except Exception:
            log.exception("run-finished listener %s failed for run %s", getattr(listener, "__qualname__", listener), run_id)


def run_store() -> RunStore:
    if _slots.store is None:
        raise RuntimeError("no run store registered: is the 'runs' app installed?")
    return _slots.store


def run_queue() -> RunQueue:
    if _slots.runs is None:
        raise RuntimeError("no run queue registered: is the 'runs' app installed?")
    return _slots.runs


def escalation_store() -> EscalationStore:
    if _slots.escalations is None:
        raise RuntimeError("no escalation store registered: is the 'escalations' app installed?")
    return _slots.escalations
