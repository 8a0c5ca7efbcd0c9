"""Figures on the tenant home page. Each capability adds its panel when it exists.

A panel is a dict: ``label``, ``value`` and optionally ``detail``, ``url``, ``tone`` (warn/danger)
and ``percent`` (draws a meter). Capabilities register providers in ``settings.HOME_PANEL_PROVIDERS``
(dotted paths to ``provider(ctx) -> list[panel]``); their panels come first.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils.module_loading import import_string

from tenants import selectors
from tenants.access import TenantContext
from tenants.models import ApiKey, Role


def money(value: Decimal) -> str:
    return f"${value:,.2f}"


def home_panels(ctx: TenantContext) -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = []
    for provider in _providers():
        panels.extend(provider(ctx))
    panels.extend(_tenant_panels(ctx))
    return panels


def _url(ctx: TenantContext, name: str, *roles: str) -> str:
    return reverse(name, kwargs={"slug": ctx.tenant.slug}) if ctx.role in roles else ""


def _tenant_panels(ctx: TenantContext) -> list[dict[str, Any]]:
    tenant, tier = ctx.tenant, ctx.tenant.tier
    counts = selectors.role_counts(tenant)
    labels = dict(Role.choices)
    keys = ApiKey.objects.for_tenant(tenant).filter(revoked_at__isnull=True)
    last_used = keys.exclude(last_used_at=None).order_by("-last_used_at").values_list("last_used_at", flat=True).first()
    return [
        {
            "label": "Members",
            "value": sum(counts.values()),
            "detail": " · ".join(f"{n} {labels[r].lower()}" for r, n in counts.items() if n),
            "url": _url(ctx, "members", Role.ADMIN),
        },
        {
            "label": "Active API keys",
            "value": keys.count(),
            "detail": f"last used {last_used:%Y-%m-%d %H:%M} UTC" if last_used else "not used yet",
            "url": _url(ctx, "api_keys", Role.ADMIN),
        },
        {
            "label": "Tier caps",
            "value": f"{money(tier.tenant_month_cost_cap)}/mo",
            "detail": f"{tier.name} tier · {money(tier.task_cost_cap)} per task · {money(tier.user_day_cost_cap)} per user-day · {money(tier.user_month_cost_cap)} per user-month",
        },
        {
            "label": "Limits",
            "value": f"{tier.max_concurrent_runs} runs",
            "detail": f"at once · API {tier.api_rate_limit_per_minute} requests/min per key",
        },
        {
            "label": "Changes, 7 days",
            "value": selectors.audit_count_since(tenant, days=7),
            "detail": "members, roles, keys and settings",
            "url": _url(ctx, "audit_log", Role.ADMIN),
        },
    ]


def _providers() -> list[Any]:
    return [import_string(path) for path in getattr(settings, "HOME_PANEL_PROVIDERS", [])]
