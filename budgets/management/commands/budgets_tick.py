"""``manage.py budgets_tick``: reconcile stale reservations, raise projection and drift alerts."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from budgets.jobs import budgets_tick


class Command(BaseCommand):
    help = "Settle/release reservations left by crashed workers; raise month-end projection and estimate-drift alerts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--stale-after", type=int, default=600, help="Release open reservations older than this (s).")

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(json.dumps(budgets_tick(stale_after_s=options["stale_after"])))
