"""The RQ worker class for AgentOps: ``manage.py rqworker runs default --worker-class agentops.worker.AgentWorker``.

RQ's warm shutdown (first SIGTERM) waits for the current job; an agent run can take many
minutes, longer than any deploy grace period. This worker tells the job (SIGUSR1 to the work
horse) to hand its run back after the current step, so a deploy loses nothing and waits seconds.

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

import logging
import os
import signal
from typing import Any

import redis
from rq.job import Job
from rq.queue import Queue
from rq.worker import Worker

# Imported once in the worker, before it forks a work horse per job: otherwise every job pays
# ~0.85 s to import the anthropic SDK again, which an operator feels as approval latency.
import agentops.harness.loop  # noqa: F401, E402
import agentops.llm.gateway  # noqa: F401, E402
from agentops import telemetry
from agentops.harness import shutdown
from budgets import escrow

log = logging.getLogger(__name__)
REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
# Block on the queues for at most this long, so an idle worker notices a dead scheduler soon.
DEQUEUE_TIMEOUT_S = 30


class AgentWorker(Worker):
    def setup_work_horse_signals(self) -> None:
        super().setup_work_horse_signals()
        shutdown.install()

    def perform_job(self, job, queue):  # type: ignore[no-untyped-def]
        # The work horse ends with os._exit: spans and logs of this job go out now or never, and
        # a hot cap's escrow slices go back now rather than when their lease expires.
        try:
            return super().perform_job(job, queue)
        finally:
            escrow.return_all()
            telemetry.flush()

    def handle_warm_shutdown_request(self) -> None:
        super().handle_warm_shutdown_request()
        if self.horse_pid:
            try:
                os.kill(self.horse_pid, signal.SIGUSR1)
            except ProcessLookupError:
                pass

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
        # After the horse exits RQ reads the job's status from Redis. If that fails the job's
        # bookkeeping is lost, not the run: its state is in PostgreSQL and the reconciler
        # re-enqueues a run that is queued without a job or whose lease expired.
        try:
            super().execute_job(job, queue)
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
