"""Figures on the tenant home page. Each capability adds its panel when it exists."""

from __future__ import annotations

from typing import Any

from tenants.access import TenantContext
from tenants.models import ApiKey, Membership


def home_panels(ctx: TenantContext) -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = []
    for provider in _providers():
        panels.extend(provider(ctx))
    panels.append({"label": "Members", "value": Membership.objects.filter(tenant=ctx.tenant).count()})
    panels.append({"label": "Active API keys", "value": ApiKey.objects.for_tenant(ctx.tenant).filter(revoked_at__isnull=True).count()})
    return panels


def _providers() -> list[Any]:
    from django.conf import settings
    from django.utils.module_loading import import_string

    return [import_string(path) for path in getattr(settings, "HOME_PANEL_PROVIDERS", [])]
