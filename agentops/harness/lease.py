"""Run leases: compare-and-set ownership so only one worker ever advances a run.

The lease is a row update, not a lock held across the step, so a killed worker (even kill -9)
leaves nothing locked: its lease simply expires and the reconciler re-enqueues the run.
Every write that advances a run re-checks ownership in the same transaction (``fence``).
"""

from __future__ import annotations

import threading
from datetime import timedelta

from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connection
from django.db.models import F, Q
from django.db.models.functions import Coalesce, Now

from runs.models import Run, RunStatus


class LeaseLost(Exception):
    """Another worker owns the run now (ours expired); stop without writing anything."""
def _duration() -> timedelta:
    return timedelta(seconds=settings.RUN_LEASE_SECONDS)


def acquire(run_id: int, worker_id: str) -> Run | None:
    """Take the lease if the run is runnable and nobody else holds a live lease."""
    leasable = Q(lease_owner="") | Q(lease_expires_at__lt=Now()) | Q(lease_owner=worker_id)
    due = Q(not_before__isnull=True) | Q(not_before__lte=Now())
    updated = (
        Run.unscoped.filter(leasable, due, pk=run_id, status__in=[RunStatus.QUEUED, RunStatus.RUNNING])
        .update(
            lease_owner=worker_id,
            lease_expires_at=Now() + _duration(),
            heartbeat_at=Now(),
            status=RunStatus.RUNNING,
            attempt=F("attempt") + 1,
            started_at=Coalesce(F("started_at"), Now()),
            not_before=None,
        )
    )
    if updated != 1:
        return None
    return Run.unscoped.select_related("agent", "tenant", "tenant__tier", "submitted_by", "api_key").get(pk=run_id)


def fence(run_id: int, worker_id: str, **fields: object) -> None:
    """Renew the lease (and apply ``fields``), or raise LeaseLost. Call inside the transaction
    that persists a step: if the lease is gone, nothing of the step is written."""
    renewed = Run.unscoped.filter(pk=run_id, lease_owner=worker_id).update(
        lease_expires_at=Now() + _duration(), heartbeat_at=Now(), **fields
    )
    if renewed != 1:
        raise LeaseLost(run_id)


def fence_relaxed(run_id: int, worker_id: str, *, iterations_inc: int = 0, model_used: str | None = None,
                  prompt_version_id: int | None = None) -> None:
    """:func:`fence` plus ``SET LOCAL synchronous_commit = off`` in the same round trip.

    For the checkpoint transactions of the hot path (see agentops.harness.durability); on
    PostgreSQL the two statements travel as one simple query. Elsewhere it is plain fence().
    """

    if connection.vendor != "postgresql":
        fields: dict[str, object] = {}
        if iterations_inc:
            fields["iterations"] = F("iterations") + iterations_inc
        if model_used is not None:
            fields.update(model_used=model_used, prompt_version_id=prompt_version_id)
        fence(run_id, worker_id, **fields)
        return
    sets = ["lease_expires_at = statement_timestamp() + make_interval(secs => %s)", "heartbeat_at = statement_timestamp()",
            "iterations = iterations + %s"]
    params: list[object] = [settings.RUN_LEASE_SECONDS, iterations_inc]
    if model_used is not None:
        sets += ["model_used = %s", "prompt_version_id = %s"]
        params += [model_used, prompt_version_id]
    sql = f"UPDATE runs_run SET {', '.join(sets)} WHERE id = %s AND lease_owner = %s; SET LOCAL synchronous_commit = off"  # noqa: S608 - fixed column names
    with connection.cursor() as cur:
        cur.execute(sql, [*params, run_id, worker_id])
        if cur.rowcount != 1:
            raise LeaseLost(run_id)


def release(run_id: int, worker_id: str, *, unless_stop_requested: bool = False, **fields: object) -> bool:
    """Give the lease up (optionally changing status etc. in the same statement).

    ``unless_stop_requested``: only when no cancel or pause was requested meanwhile. A worker
    putting the run back on the queue uses it, so a cancel that arrived during the step is
    applied by this worker now instead of by whichever job picks the run up after its backoff.
    The condition is in the UPDATE itself: ``run_cancel`` locks the row, so the two serialise.
    """
    qs = Run.unscoped.filter(pk=run_id, lease_owner=worker_id)
    if unless_stop_requested:
        qs = qs.filter(cancel_requested=False, pause_requested=False)
    return qs.update(lease_owner="", lease_expires_at=None, **fields) == 1


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
            close_old_connections()

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
