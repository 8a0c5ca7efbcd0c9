"""``manage.py scheduler``: the one process that runs every periodic job (agentops/periodic.py).

The Procfile's ``scheduler`` process. It survives database and Redis outages of any length
(errors are logged, recorded for /readyz and retried), and stops on SIGTERM after the job in hand.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from agentops.periodic import Scheduler, periodic_jobs


class Command(BaseCommand):
    # System checks query the database; a scheduler (re)started during an outage must start anyway.
    requires_system_checks: list[str] = []
    help = "Run the periodic jobs (reconciler, escalation sweep, reservations, budget alerts, retention) forever."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--list", action="store_true", help="Print every periodic job and its interval, then exit.")
        parser.add_argument("--once", action="store_true", help="Run every job once, then exit.")

    def handle(self, *args: Any, **options: Any) -> None:
        jobs = periodic_jobs()
        if options["list"]:
            for job in jobs:
                self.stdout.write(f"{job.name:24} every {job.every_s:g} s  {job.what}")
            return
        scheduler = Scheduler(jobs, verbose=self.stdout.write)
        if options["once"]:
            scheduler.run_due()
            return
        scheduler.install_signal_handlers()
        self.stdout.write(f"scheduler: {len(jobs)} periodic jobs: " + ", ".join(f"{j.name} every {j.every_s:g}s" for j in jobs))
        scheduler.forever()
