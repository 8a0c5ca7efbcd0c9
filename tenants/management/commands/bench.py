"""``manage.py bench <name>`` runs one benchmark; ``--list`` names them all.

The last line of output is always one JSON object with the figures, so scripts can parse it. The
machine's load is printed before and after (other processes share the cores), and a bench that
measured nothing (no positive time or rate, or a zero rate) exits non-zero after printing its figures.
"""

from __future__ import annotations

import json
import os
import platform
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from agentops.bench import machine_load, nothing_measured, registry


def _coerce(value: str) -> Any:
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


class Command(BaseCommand):
    help = "Run a benchmark and print its figures as JSON on the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", nargs="?")
        parser.add_argument("--list", action="store_true", help="List the benchmarks.")
        parser.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE", help="Override an option.")

    def handle(self, *args: Any, **options: Any) -> None:
        benches = registry()
        if options["list"] or not options["name"]:
            for b in benches.values():
                defaults = " ".join(f"{k}={v}" for k, v in b.options.items())
                self.stdout.write(f"{b.name:20} {b.help}" + (f"  [{defaults}]" if defaults else ""))
            return
        bench = benches.get(options["name"])
        if bench is None:
            raise CommandError(f"Unknown benchmark {options['name']!r}; see --list.")
        params = dict(bench.options)
        for item in options["opt"]:
            key, _, value = item.partition("=")
            if key not in params:
                raise CommandError(f"Unknown option {key!r} for {bench.name}; options: {', '.join(params)}")
            params[key] = _coerce(value)
        load_before = machine_load()
        self.stdout.write(f"{bench.name}: load before {load_before}")
        measured = bench.func(stdout=self.stdout, **params)
        load_after = machine_load()
        self.stdout.write(f"{bench.name}: load after {load_after}")
        figures = {"benchmark": bench.name, "machine": f"{platform.machine()} {platform.processor() or ''} {_cpus()} cpus".strip(), **params,
                   "load_before": load_before, "load_after": load_after, **measured}
        self.stdout.write(json.dumps(figures, default=str))
        problem = nothing_measured(measured, params)
        if problem:
            raise CommandError(f"{bench.name} measured nothing: {problem}")


def _cpus() -> int:
    return os.cpu_count() or 0
