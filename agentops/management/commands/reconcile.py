"""``manage.py reconcile [--every SECONDS]``: recover runs and reservations crashed workers left.

Once by default (prints what it did). ``--every`` is kept for existing set-ups: it runs the
recovery jobs of agentops/periodic.py on the same error-proof loop as ``manage.py scheduler``
(which deployments should run instead: it also runs budget alerts and retention). Safe to run
in several places at once: the lease decides.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from agentops.periodic import Scheduler, periodic_jobs, reconcile_job

RECOVERY_JOBS = ("reconcile_runs", "escalations_sweep", "reconcile_reservations")


class Command(BaseCommand):
    # System checks query the database; a scheduler (re)started during an outage must start anyway.
    requires_system_checks: list[str] = []
    help = "Re-enqueue runs whose lease expired or that are queued without a job; settle stale reservations."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--every", type=float, default=0, help="Repeat every N seconds (0: once). Prefer `manage.py scheduler`.")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["every"]:
            self.stdout.write(json.dumps(reconcile_job()))
            return
        jobs = [replace(j, every_s=options["every"]) for j in periodic_jobs() if j.name in RECOVERY_JOBS]
        scheduler = Scheduler(jobs, verbose=self.stdout.write)
        scheduler.install_signal_handlers()
        scheduler.forever()
