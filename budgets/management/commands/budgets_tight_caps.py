"""``manage.py budgets_tight_caps <tenant-slug>``: tiny caps so live traffic trips each scope (demo)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from budgets.services import tight_caps_set
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Set tight caps on a tenant (task/user-day/user-month/tenant-month), e.g. to demonstrate capped runs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        for name, default in (("task", "0.02"), ("user-day", "0.05"), ("user-month", "0.10"), ("tenant-month", "0.20")):
            parser.add_argument(f"--{name}", default=default)

    def handle(self, *args: Any, **o: Any) -> None:
        tenant = Tenant.objects.filter(slug=o["slug"]).first()
        if tenant is None:
            raise CommandError(f"No tenant {o['slug']!r}.")
        caps = tight_caps_set(tenant=tenant, task=o["task"], user_day=o["user_day"], user_month=o["user_month"], tenant_month=o["tenant_month"])
        self.stdout.write(f"caps for {tenant.slug}: task ${caps.task_cost_cap} user/day ${caps.user_day_cost_cap} "
                          f"user/month ${caps.user_month_cost_cap} tenant/month ${caps.tenant_month_cost_cap}")
