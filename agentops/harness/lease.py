"""Run leases: compare-and-set ownership so only one worker ever advances a run.

The lease is a row update, not a lock held across the step, so a killed worker (even kill -9)
leaves nothing locked: its lease simply expires and the reconciler re-enqueues the run.
Every write that advances a run re-checks ownership in the same transaction (``fence``).
"""

from __future__ import annotations

import threading

from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connections

from agentops.harness import hooks
from agentops.harness.store import RunRecord


class LeaseLost(Exception):
    """Another worker owns the run now (ours expired); stop without writing anything."""


def acquire(run_id: int, worker_id: str) -> RunRecord | None:
    """Take the lease if the run is runnable and nobody else holds a live lease."""
    return hooks.run_store().acquire(run_id, worker_id)


def fence(run_id: int, worker_id: str, **fields: object) -> None:
    """Renew the lease (and apply ``fields``), or raise LeaseLost. Call inside the transaction
    that persists a step: if the lease is gone, nothing of the step is written."""
    if not hooks.run_store().fence(run_id, worker_id, **fields):
        raise LeaseLost(run_id)


def fence_relaxed(
    run_id: int,
    worker_id: str,
    *,
    iterations_inc: int = 0,
    model_used: str | None = None,
    prompt_version_id: int | None = None,
    flags: list[str] | None = None,
) -> None:
    """:func:`fence` plus ``SET LOCAL synchronous_commit = off`` in the same round trip.

    For the checkpoint transactions of the hot path (see agentops.harness.durability).
    """
    if not hooks.run_store().fence_relaxed(
        run_id,
        worker_id,
        iterations_inc=iterations_inc,
        model_used=model_used,
        prompt_version_id=prompt_version_id,
        flags=flags,
    ):
        raise LeaseLost(run_id)


def release(
    run_id: int,
    worker_id: str,
    *,
    unless_stop_requested: bool = False,
    count_reschedule: bool = False,
    **fields: object,
) -> bool:
    """Give the lease up (optionally changing status etc. in the same statement).

    ``unless_stop_requested``: only when no cancel or pause was requested meanwhile. A worker
    putting the run back on the queue uses it, so a cancel that arrived during the step is
    applied by this worker now instead of by whichever job picks the run up after its backoff.
    The condition is in the UPDATE itself: ``run_cancel`` locks the row, so the two serialise.
    ``count_reschedule`` adds one to the run's reschedule count in the same statement.
    """
    return hooks.run_store().release(
        run_id,
        worker_id,
        unless_stop_requested=unless_stop_requested,
        count_reschedule=count_reschedule,
        **fields,
    )


class Heartbeat:
    """Renews the lease in the background while a long model or tool call is in flight."""

    def __init__(self, run_id: int, worker_id: str):
        self.run_id, self.worker_id = run_id, worker_id
        self._stop = threading.Event()
        self.lost = False
        self._thread = threading.Thread(target=self._beat, daemon=True, name=f"heartbeat-{run_id}")

    def _beat(self) -> None:
        interval = max(1.0, settings.RUN_LEASE_SECONDS / 3)
        try:
            while not self._stop.wait(interval):
                try:
                    fence(self.run_id, self.worker_id)
                except LeaseLost:
                    self.lost = True
                    return
                except (OperationalError, InterfaceError):
                    # A database blip: keep beating; the step itself fails if the outage lasts.
                    close_old_connections()
        finally:
            # This thread ends here: its connection would otherwise stay open until garbage
            # collection (and, for a worker that runs many steps, one per step).
            connections.close_all()

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
