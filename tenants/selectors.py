"""Reads for tenants: what a member sees on home, members, keys, webhooks and the audit log."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count, F, QuerySet
from django.utils import timezone

from tenants.models import ApiKey, AuditEvent, Membership, Role, Tenant, WebhookDelivery, WebhookEndpoint


def tenants_for_user(user: Any) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user, tenant__active=True).select_related("tenant", "tenant__tier").order_by("tenant__name")


def members_for_tenant(tenant: Tenant) -> QuerySet[Membership]:
    return Membership.objects.filter(tenant=tenant).select_related("user").order_by("user__username")


def role_counts(tenant: Tenant) -> dict[str, int]:
    """Members per role, every role present (zero when nobody holds it), in ``Role`` order."""
    counts = dict(Membership.objects.filter(tenant=tenant).values_list("role").annotate(n=Count("id")).order_by())
    return {role: counts.get(role, 0) for role in Role.values}


def api_keys_for_tenant(tenant: Tenant) -> QuerySet[ApiKey]:
    """Active keys first, then revoked ones, newest first within each group."""
    return ApiKey.objects.for_tenant(tenant).select_related("created_by").order_by(F("revoked_at").asc(nulls_first=True), "-created_at")


def webhook_endpoints_for_tenant(tenant: Tenant) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.for_tenant(tenant).select_related("created_by").order_by("created_at", "pk")


def webhook_deliveries_recent(tenant: Tenant, *, limit: int = 25) -> list[WebhookDelivery]:
    return list(WebhookDelivery.objects.for_tenant(tenant).select_related("endpoint").order_by("-created_at", "-id")[:limit])


def audit_for_tenant(tenant: Tenant, *, action: str = "") -> QuerySet[AuditEvent]:
    qs = AuditEvent.objects.for_tenant(tenant).select_related("actor", "actor_key")
    if action:
        qs = qs.filter(action__startswith=action)
    return qs


def audit_actions(tenant: Tenant) -> list[str]:
    """The distinct action names recorded for ``tenant``, for the audit log's filter."""
    return list(AuditEvent.objects.for_tenant(tenant).order_by("action").values_list("action", flat=True).distinct())


def audit_count_since(tenant: Tenant, *, days: int) -> int:
    return AuditEvent.objects.for_tenant(tenant).filter(at__gte=timezone.now() - timedelta(days=days)).count()


def audit_changes(event: AuditEvent) -> list[dict[str, Any]]:
    """``before``/``after`` as rows ``{"field", "before", "after", "changed"}`` for display."""
    before, after = event.before or {}, event.after or {}
    rows = []
    for name in dict.fromkeys([*before, *after]):
        old, new = before.get(name), after.get(name)
        if isinstance(old, list):
            old = ", ".join(map(str, old))
        if isinstance(new, list):
            new = ", ".join(map(str, new))
        rows.append({"field": name, "before": old, "after": new, "changed": name in before and name in after and old != new})
    return rows
