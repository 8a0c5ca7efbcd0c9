"""``manage.py reconcile [--every SECONDS]``: recover runs and reservations crashed workers left.

Once by default; with ``--every`` it keeps running (the demo and deployments run it beside the
workers, like a cron). Safe to run in several places at once: the lease decides.
"""

from __future__ import annotations

import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections


class Command(BaseCommand):
    help = "Re-enqueue runs whose lease expired or that are queued without a job; settle stale reservations."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--every", type=float, default=0, help="Repeat every N seconds (0: once).")

    def handle(self, *args: Any, **options: Any) -> None:
        from runs.jobs import reconcile_job

        while True:
            result = reconcile_job()
            if any(result.values()) or not options["every"]:
                self.stdout.write(json.dumps(result))
            if not options["every"]:
                return
            close_old_connections()
            time.sleep(options["every"])
