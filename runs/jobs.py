"""RQ jobs for runs. Thin: they call the harness and services."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import close_old_connections

from agentops.harness.loop import drive_run, worker_identity
from agentops.jobs import DB_UNAVAILABLE, drop_db_connections, retry_after_db_outage
from runs import judging

log = logging.getLogger(__name__)


def run_job(run_id: int, resume_as: str = "", db_attempt: int = 0) -> str:
    """Drive one run. A database outage does not fail the job: it schedules itself again.

    The retry carries the lease owner of the attempt that met the outage (``resume_as``), so
    once the database is back it resumes at once instead of waiting for that lease to expire.
    That is safe: the attempt that held the lease has ended, and this chain of jobs is the only
    one that knows its owner id. Any other job for the run meets a live lease and does nothing.
    """
    worker_id = resume_as or worker_identity()
    close_old_connections()
    try:
        return drive_run(run_id, worker_id=worker_id)
    except DB_UNAVAILABLE as exc:
        log.warning("run %s: database unavailable (%s); retrying", run_id, exc.__class__.__name__)
        drop_db_connections()
        retry_after_db_outage(run_job, run_id, resume_as=worker_id, db_attempt=db_attempt + 1, attempt=db_attempt,
                              queue="runs", timeout=settings.RUN_JOB_TIMEOUT)
        return "db_unavailable"
    finally:
        try:
            close_old_connections()
        except DB_UNAVAILABLE:
            drop_db_connections()


def judge_job(run_id: int, seq: int, evaluator: str) -> str:
    """A judge evaluator on one persisted turn (a priced model call); its flag lands on the turn and the run."""
    close_old_connections()
    return judging.judge_turn(run_id=run_id, seq=seq, name=evaluator)
