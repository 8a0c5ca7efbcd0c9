"""Every periodic job of AgentOps and its interval, and the one process that runs them.

``python manage.py scheduler`` (the Procfile's ``scheduler`` process) runs :func:`periodic_jobs`
in-process, each on its own interval. One job's error — PostgreSQL or Redis down, a bug — is
logged and recorded, the job is tried again a few seconds later, and the others keep their
schedule: the process never exits on an error, so an outage of any length ends with the
scheduler resuming by itself. Its supervisor (the platform reading the Procfile, systemd, …)
only restarts it after a crash of the interpreter or a deploy.

Why in-process rather than RQ's cron (``rq cron`` / ``CronScheduler``, which enqueues each job
on a queue for a worker): the reconciler is what repairs the queues after Redis lost them and
what re-enqueues runs whose workers died, so it must not itself wait in a queue for a worker.
``CronScheduler.start()`` also exits on the first Redis error, like the rest of RQ 2.12.

Every job is safe to run in several places at once (the run lease, the reservation row lock and
the alerts' unique keys decide), so a second scheduler during a deploy overlap is harmless.
Each job's last run (when, how long, ok or the error's class) is kept in the Redis hash
:data:`LAST_RUN_KEY`; ``/readyz`` shows it.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import django_rq
import redis
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone
from rq.registry import clean_registries

from agentops.escalations.jobs import escalations_sweep_job
from agentops.evals.services import sweep as evals_sweep
from agentops.jobs import DB_UNAVAILABLE, drop_db_connections, redis_available
from agentops.memory import journal
from budgets.jobs import budget_alerts, budgets_tick
from budgets.services import reconcile_reservations
from runs.flag_stats import flag_drift_check
from runs.services import reconcile_runs
from tenants.models import WebhookDelivery

log = logging.getLogger(__name__)

LAST_RUN_KEY = "agentops:periodic:last_run"
# After a failed run a job is tried again this soon (or at its interval, if that is shorter).
RETRY_AFTER_ERROR_S = 3.0


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    func: Callable[[], Any]
    every_s: float
    what: str


def periodic_jobs() -> list[PeriodicJob]:
    """The list. Intervals come from settings (``PERIODIC_*_SECONDS``), read when called."""
    every = settings.PERIODIC_RECONCILE_SECONDS
    return [
        PeriodicJob("reconcile_runs", reconcile_runs, every,
                    "re-enqueue runs whose lease expired and queued runs that lost their job"),
        PeriodicJob("escalations_sweep", escalations_sweep_job, every,
                    "expire due escalations; resume runs whose escalation was decided"),
        PeriodicJob("reconcile_reservations", reconcile_reservations, every,
                    "settle or release cost reservations left open by crashed or stopped runs"),
        PeriodicJob("budget_alerts", budget_alerts, settings.PERIODIC_BUDGET_ALERTS_SECONDS,
                    "month-end projection and estimate-drift alerts"),
        PeriodicJob("evals_sweep", evals_sweep, every,
                    "score eval cases whose run ended unseen, dispatch waiting cases, start scheduled (drift) eval runs"),
        PeriodicJob("flag_drift", flag_drift_check, settings.PERIODIC_FLAG_DRIFT_SECONDS,
                    "alert when an online evaluator flag's rate per agent doubles week over week"),
        PeriodicJob("retention", retention_sweep, settings.PERIODIC_RETENTION_SECONDS,
                    "delete old finished webhook deliveries; clean RQ's job registries"),
        PeriodicJob("journal_purge", journal.purge, settings.PERIODIC_RETENTION_SECONDS,
                    "delete failure-journal entries expired or cleared more than 30 days ago"),
    ]


def retention_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Delete finished webhook deliveries older than ``WEBHOOK_DELIVERY_RETENTION_DAYS``, and let
    RQ move abandoned jobs out of its started/scheduled registries (what its workers otherwise do
    only every 10 minutes)."""
    out = {"webhook_deliveries": 0, "queues_cleaned": 0}
    days = settings.WEBHOOK_DELIVERY_RETENTION_DAYS
    if days > 0:
        cutoff = (now or timezone.now()) - timedelta(days=days)
        out["webhook_deliveries"], _ = (
            WebhookDelivery.unscoped.exclude(status=WebhookDelivery.PENDING).filter(created_at__lt=cutoff).delete()
        )

    if redis_available(refresh=True):
        for name in settings.RQ_QUEUES:
            clean_registries(django_rq.get_queue(name))
            out["queues_cleaned"] += 1
    return out


# -- recording --------------------------------------------------------------------------------

def _redis() -> Any:
    return django_rq.get_connection("default")


def last_runs() -> dict[str, dict[str, Any]]:
    """What /readyz shows: per job, its interval and its last run (``None`` if it never ran)."""
    raw = _redis().hgetall(LAST_RUN_KEY)
    recorded = {k.decode(): json.loads(v) for k, v in raw.items()}
    out: dict[str, dict[str, Any]] = {}
    now = datetime.now(UTC)
    for job in periodic_jobs():
        entry: dict[str, Any] = {"every_s": job.every_s, "last_run": recorded.get(job.name)}
        last_ok = (recorded.get(job.name) or {}).get("last_ok_at")
        entry["seconds_since_ok"] = round((now - datetime.fromisoformat(last_ok)).total_seconds(), 1) if last_ok else None
        out[job.name] = entry
    return out


class Scheduler:
    """Runs each job when due. ``clock`` and ``sleep`` are injectable so tests need not wait."""
    def __init__(self, jobs: list[PeriodicJob], *, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Any] | None = None, verbose: Callable[[str], None] | None = None):
        self.jobs = jobs
        self.stop = threading.Event()
        self.clock, self.verbose = clock, verbose
        self.sleep = sleep or self.stop.wait  # a stop request ends the wait at once
        self.next_due = {job.name: 0.0 for job in jobs}
        self.records: dict[str, dict[str, Any]] = {}
        self._unsaved = False

    def run_due(self) -> list[str]:
        """Run every job that is due; return the names of those that ran."""
        ran = []
        for job in self.jobs:
            if self.stop.is_set():
                break
            if self.clock() >= self.next_due[job.name]:
                ok = self.run_one(job)
                wait = job.every_s if ok else min(job.every_s, RETRY_AFTER_ERROR_S)
                self.next_due[job.name] = self.clock() + wait
                ran.append(job.name)
        self.save()
        return ran

    def run_one(self, job: PeriodicJob) -> bool:
        started = self.clock()
        at = datetime.fromtimestamp(started, UTC).isoformat()
        record = dict(self.records.get(job.name) or {})
        try:
            close_old_connections()
            result = job.func()
        except Exception as exc:
            # Anything: a database or Redis outage, a bug. Log it, keep the schedule.
            if isinstance(exc, DB_UNAVAILABLE):
                log.warning("periodic job %s: database unavailable (%s)", job.name, exc.__class__.__name__)
            else:
                log.exception("periodic job %s failed", job.name)
            drop_db_connections()  # the next attempt starts from a fresh connection
            record.update(last_run_at=at, ok=False, error=exc.__class__.__name__, seconds=round(self.clock() - started, 3))
            self.records[job.name] = record
            self._unsaved = True
            return False
        record.update(last_run_at=at, last_ok_at=at, ok=True, error="", seconds=round(self.clock() - started, 3))
        self.records[job.name] = record
        self._unsaved = True
        if self.verbose is not None and isinstance(result, dict) and any(v for k, v in result.items() if k != "checked"):
            self.verbose(json.dumps({"job": job.name, **result}, default=str))
        return True

    def save(self) -> None:
        """Write the last runs to Redis; while Redis is down they wait in memory."""
        if not self._unsaved or not self.records:
            return

        try:
            _redis().hset(LAST_RUN_KEY, mapping={k: json.dumps(v) for k, v in self.records.items()})
            self._unsaved = False
        except (redis.RedisError, OSError) as exc:
            log.warning("periodic: could not record last runs in Redis (%s)", exc.__class__.__name__)

    def seconds_to_next(self) -> float:
        return max(0.0, min(self.next_due.values()) - self.clock())

    def forever(self) -> None:
        """Run until :attr:`stop` is set (SIGTERM / SIGINT in the command)."""
        while not self.stop.is_set():
            self.run_due()
            self.sleep(min(1.0, self.seconds_to_next()))

    def install_signal_handlers(self) -> None:
        def handler(signum: int, frame: Any) -> None:
            log.info("scheduler: signal %s, stopping after the current job", signum)
            self.stop.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)


def reconcile_job() -> dict[str, int]:
    """One pass of the recovery jobs (``manage.py reconcile`` without ``--every``)."""
    result = reconcile_runs()
    result.update({f"escalations_{k}": v for k, v in escalations_sweep_job().items()})
    tick = budgets_tick()
    result.update({f"reservations_{k}": v for k, v in tick["reservations"].items()})
    result.update({"projection_alerts": tick["projection_alerts"], "drift_alerts": tick["drift_alerts"]})
    return result
