"""The RQ worker class for AgentOps: ``manage.py rqworker runs default --worker-class agentops.worker.AgentWorker``.

It runs each job in the worker process itself, not in a work horse forked per job (issue 14): a
fork bought no isolation a run needs — a run's state lives in PostgreSQL behind its lease, so a
job killed with the worker (``kill -9``, OOM) is taken over when the lease expires, exactly as
when a horse died — but cost every job a fork, a new database connection, a new ``anthropic``
client and the SDK's pydantic validators built again. Kept as RQ's ``SimpleWorker`` keeps them:
the job timeout (RQ's death penalty, ``SIGALRM`` in this process), the worker's TTL in Redis
(job timeout + 60 s while busy), warm and cold shutdown. Each job runs in a fresh
``contextvars.Context``, so log fields and trace context bound by one job never leak into the next.
:class:`ForkingAgentWorker` is the former fork-per-job behaviour, kept for comparison
(``bench throughput`` measures both) and for deployments that load untrusted job code.

RQ's warm shutdown (first SIGTERM) waits for the current job; an agent run can take many
minutes, longer than any deploy grace period. This worker tells the job (a flag in process;
SIGUSR1 to ForkingAgentWorker's work horse) to hand its run back after the current step, so a
deploy loses nothing and waits seconds.

It also rides out a Redis restart. Stock RQ 2.12 only retries Redis while it waits for a job
(``dequeue_job_and_maintain_ttl``); anywhere else — the heartbeat it sends every
``job_monitoring_interval`` while a work horse runs, the state and suspension checks of the
work loop — a ``ConnectionError`` reaches ``work()``'s catch-all, which logs "found an unhandled
exception, quitting" and exits, leaving the horse orphaned and the worker gone for good. Here
those calls log and carry on: the work horse keeps running (its run's lease lives in
PostgreSQL, not Redis), the dequeue loop reconnects with its own backoff, and the scheduler
process RQ forks beside the worker (which dies on the same error) is started again as soon as
Redis answers, not at the next 10-minute maintenance.
"""

from __future__ import annotations

import contextvars
import logging
import os
import signal
from typing import Any

import redis
from django.db import close_old_connections
from rq.defaults import DEFAULT_WORKER_TTL
from rq.job import Job
from rq.queue import Queue
from rq.worker import Worker, WorkerStatus

# Imported once at worker start (and, for ForkingAgentWorker, before it forks a work horse per
# job): otherwise the first job pays ~0.85 s to import the anthropic SDK, which an operator feels
# as approval latency.
import agentops.harness.loop  # noqa: F401, E402
import agentops.llm.gateway  # noqa: F401, E402
from agentops import telemetry
from agentops.harness import shutdown
from agentops.jobs import DB_UNAVAILABLE, drop_db_connections
from agentops.llm import gateway
from budgets import escrow

log = logging.getLogger(__name__)
REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
# Block on the queues for at most this long, so an idle worker notices a dead scheduler soon.
DEQUEUE_TIMEOUT_S = 30


class AgentWorker(Worker):
    # False: run each job in this process (the default). True: RQ's fork of a work horse per job.
    fork_per_job = False

    def bootstrap(self, *args: Any, **kwargs: Any) -> None:
        super().bootstrap(*args, **kwargs)
        if not self.fork_per_job:
            warm_up()

    def setup_work_horse_signals(self) -> None:
        super().setup_work_horse_signals()
        shutdown.install()

    def perform_job(self, job, queue):  # type: ignore[no-untyped-def]
        # A work horse ends with os._exit: spans and logs of this job go out now or never (in
        # process they would go out anyway; flushing keeps a job's spans with the job), and a hot
        # cap's escrow slices go back now rather than when their lease expires.
        try:
            if self.fork_per_job:
                return super().perform_job(job, queue)
            # A fresh context per job, as a fresh horse had: nothing one job binds reaches the next.
            # Database connections outlive a job here (CONN_MAX_AGE), so each job starts and ends
            # as a Django request does: a connection broken (a PostgreSQL restart) or too old is dropped.
            _close_old_connections_quietly()
            return contextvars.Context().run(super().perform_job, job, queue)
        finally:
            escrow.return_all()  # before the connection may be dropped: a new session drops leases
            if not self.fork_per_job:
                _close_old_connections_quietly()
            telemetry.flush()

    def handle_warm_shutdown_request(self) -> None:
        super().handle_warm_shutdown_request()
        if not self.fork_per_job:
            # The job runs here: the loop sees the flag between steps and hands its run back.
            shutdown.requested = True
        elif self.horse_pid:
            try:
                os.kill(self.horse_pid, signal.SIGUSR1)
            except ProcessLookupError:
                pass

    def get_heartbeat_ttl(self, job: Job) -> int:
        if self.fork_per_job:
            return super().get_heartbeat_ttl(job)
        # No monitoring parent renews the worker's key while a job runs in process (RQ's SimpleWorker
        # rule): it must outlive the job's own timeout.
        return DEFAULT_WORKER_TTL if job.timeout == -1 else int(job.timeout or DEFAULT_WORKER_TTL) + 60

    # -- riding out a Redis restart ---------------------------------------------------------
    @property
    def dequeue_timeout(self) -> int:
        return min(DEQUEUE_TIMEOUT_S, super().dequeue_timeout)

    def _redis_down(self, where: str, exc: Exception) -> None:
        log.warning("worker %s: Redis unavailable in %s (%s); carrying on", self.name, where, exc.__class__.__name__)

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        if pipeline is not None:  # part of a pipeline: the caller executes (and guards) it
            super().heartbeat(timeout, pipeline=pipeline)
            return
        try:
            super().heartbeat(timeout)
        except REDIS_DOWN as exc:
            self._redis_down("heartbeat", exc)
            return
        self._revive_scheduler()

    def maintain_heartbeats(self, job: Job) -> None:
        # Called every job_monitoring_interval while the horse works; the horse must not be
        # abandoned because Redis blinked.
        try:
            super().maintain_heartbeats(job)
        except REDIS_DOWN as exc:
            self._redis_down("maintain_heartbeats", exc)

    def set_state(self, state: str, pipeline: Any = None) -> None:
        try:
            super().set_state(state, pipeline=pipeline)
        except REDIS_DOWN as exc:
            self._redis_down("set_state", exc)

    def check_for_suspension(self, burst: bool) -> None:
        try:
            super().check_for_suspension(burst)
        except REDIS_DOWN as exc:
            self._redis_down("check_for_suspension", exc)

    def run_maintenance_tasks(self) -> None:
        try:
            super().run_maintenance_tasks()
        except REDIS_DOWN as exc:
            self._redis_down("run_maintenance_tasks", exc)

    def execute_job(self, job: Job, queue: Queue) -> None:
        # After the job RQ records its status in Redis. If that fails the job's bookkeeping is
        # lost, not the run: its state is in PostgreSQL and the reconciler re-enqueues a run that
        # is queued without a job or whose lease expired.
        try:
            if self.fork_per_job:
                super().execute_job(job, queue)
            else:  # RQ's SimpleWorker.execute_job: no fork, the death penalty still applies in perform_job
                self.prepare_execution(job)
                self.perform_job(job, queue)
                self.set_state(WorkerStatus.IDLE)
        except REDIS_DOWN as exc:
            self._redis_down(f"execute_job({job.id})", exc)
            if self._horse_pid:
                self.wait_for_horse()  # never leave a horse running unwatched beside the next job
            self._horse_pid = 0

    def set_current_job_working_time(self, current_job_working_time: float, pipeline: Any = None) -> None:
        try:
            super().set_current_job_working_time(current_job_working_time, pipeline=pipeline)
        except REDIS_DOWN as exc:
            self._redis_down("set_current_job_working_time", exc)

    def _revive_scheduler(self) -> None:
        """Start RQ's scheduler process again if it died (it exits on its first Redis error)."""
        scheduler = getattr(self, "scheduler", None)
        if scheduler is None or self.is_horse or self._stop_requested or self._shutdown_requested_date:
            return  # a warm shutdown stopped it on purpose
        process = getattr(scheduler, "_process", None)
        if process is not None and process.is_alive():
            return
        try:
            scheduler.acquire_locks(auto_start=True)
        except REDIS_DOWN as exc:
            self._redis_down("acquire_locks", exc)


class ForkingAgentWorker(AgentWorker):
    """The fork-per-job worker AgentOps ran before issue 14 (``--worker-class agentops.worker.ForkingAgentWorker``)."""

    fork_per_job = True


def _close_old_connections_quietly() -> None:
    try:
        close_old_connections()
    except DB_UNAVAILABLE:  # the database is down: the next job finds out and retries
        drop_db_connections()


def warm_up() -> None:
    """Once per worker process: the SDK's client and lazily built models (agentops.llm.gateway.warm_up)."""
    try:
        gateway.warm_up()
    except Exception:  # an optimisation only: the first job builds what it needs anyway
        log.warning("worker warm-up failed; the first job builds the client itself", exc_info=True)
