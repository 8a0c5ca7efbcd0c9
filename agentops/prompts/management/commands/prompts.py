"""``manage.py prompts export --tenant T DIR`` / ``manage.py prompts push --tenant T DIR``: prompts as YAML files.

Push exits non-zero when any file is invalid (a CI step fails on it), listing the problems.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from agentops.prompts import files
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Export a tenant's prompts to YAML files, or push YAML files as new versions."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["export", "push"])
        parser.add_argument("directory")
        parser.add_argument("--tenant", required=True, help="The tenant's slug.")
        parser.add_argument("--label", help="export: the version this label points at (default: each prompt's latest).")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant {options['tenant']!r}.")
        directory = Path(options["directory"])
        if options["action"] == "export":
            written = files.export(tenant=tenant, directory=directory, label=options.get("label"))
            self.stdout.write(f"exported {len(written)} prompts to {directory}")
            return
        if not directory.is_dir():
            raise CommandError(f"{directory} is not a directory.")
        results = files.push(tenant=tenant, directory=directory)
        for r in results:
            line = f"{r.path.name}: {r.prompt} {r.outcome}" + (f" v{r.version}" if r.version else "")
            self.stdout.write(line)
            for field, problem in (r.problems or {}).items():
                self.stdout.write(f"  {field}: {problem}")
        invalid = [r for r in results if r.outcome == "invalid"]
        if invalid:
            raise CommandError(f"{len(invalid)} of {len(results)} files were not pushed.")
