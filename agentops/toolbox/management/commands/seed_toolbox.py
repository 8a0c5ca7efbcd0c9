from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from agentops.toolbox.seed import seed_demo_data
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Seed the built-in tools' demo data (accounts, charges, knowledge base, policies) for a tenant."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant_slug")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant_slug"]).first()
        if tenant is None:
            raise CommandError(f"no tenant {options['tenant_slug']!r}")
        seed_demo_data(tenant)
        self.stdout.write(self.style.SUCCESS(f"toolbox demo data ready for {tenant.slug}"))
