"""Reads for tenants: what a member sees on home, members, keys and the audit log."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from tenants.models import ApiKey, AuditEvent, Membership, Tenant


def tenants_for_user(user: Any) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user, tenant__active=True).select_related("tenant", "tenant__tier").order_by("tenant__name")


def members_for_tenant(tenant: Tenant) -> QuerySet[Membership]:
    return Membership.objects.filter(tenant=tenant).select_related("user").order_by("user__username")


def api_keys_for_tenant(tenant: Tenant) -> QuerySet[ApiKey]:
    return ApiKey.objects.for_tenant(tenant).select_related("created_by").order_by("-created_at")


def audit_for_tenant(tenant: Tenant, *, action: str = "") -> QuerySet[AuditEvent]:
    qs = AuditEvent.objects.for_tenant(tenant).select_related("actor", "actor_key")
    if action:
        qs = qs.filter(action__startswith=action)
    return qs
