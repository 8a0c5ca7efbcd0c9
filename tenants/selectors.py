"""Reads for tenants: what a member sees on home, members, keys, webhooks and the audit log."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.db.models import Count, F, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.formats import date_format

from tenants.models import (
    ApiKey,
    AuditEvent,
    Invitation,
    Membership,
    Role,
    Tenant,
    WebhookDelivery,
    WebhookEndpoint,
)
from tenants.money import money_str, usd_display


def tenants_for_user(user: Any) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user, tenant__active=True).select_related("tenant", "tenant__tier").order_by("tenant__name")


def members_for_tenant(tenant: Tenant) -> QuerySet[Membership]:
    return Membership.objects.filter(tenant=tenant).select_related("user").order_by("user__username")


def invitations_open_for_tenant(tenant: Tenant) -> QuerySet[Invitation]:
    """Invitations neither accepted nor revoked, expired ones included (they can be re-sent)."""
    return Invitation.objects.for_tenant(tenant).open().select_related("invited_by").order_by("-sent_at", "-id")


def normalize_email(email: str) -> str:
    return email.strip().lower()


_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,100}")


def token_looks_valid(raw: object) -> bool:
    return isinstance(raw, str) and _TOKEN.fullmatch(raw) is not None


class InvitationInvalid(Exception):
    """A link that opens no invitation. ``reason``: unknown, used, revoked or expired."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def invitation_check(candidates: QuerySet[Invitation], *, now: datetime) -> Invitation:
    """The one invitation in ``candidates`` if it can still be accepted, else ``InvitationInvalid``."""
    invitation = candidates.select_related("tenant").filter(tenant__active=True).first()
    if invitation is None:
        raise InvitationInvalid("unknown")
    if invitation.accepted_at is not None:
        raise InvitationInvalid("used")
    if invitation.revoked_at is not None:
        raise InvitationInvalid("revoked")
    if invitation.is_expired(now):
        raise InvitationInvalid("expired")
    return invitation


def invitation_from_token(raw: object, *, now: datetime | None = None) -> Invitation:
    """The invitation a link's token opens, looked up across tenants (the link is all there is)."""
    if not token_looks_valid(raw):
        raise InvitationInvalid("unknown")
    candidates = Invitation.unscoped.filter(token_hash=Invitation.hash_token(str(raw)))
    return invitation_check(candidates, now=now or timezone.now())


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
    """The tenant's audit log; ``action`` is one action or a prefix of several (``member.``).

    One known action is an equality, a range of the (tenant, action, at, id) index; a prefix matches
    with ``LIKE 'prefix%'`` (the planner walks the (tenant, at) index and filters)."""
    qs = AuditEvent.objects.for_tenant(tenant).select_related("actor", "actor_key")
    if action:
        matching = [a for a in audit_actions(tenant) if a.startswith(action)]
        qs = qs.filter(action=action) if matching == [action] else qs.filter(action__startswith=action)
    return qs


def audit_actions(tenant: Tenant) -> list[str]:
    """The distinct action names recorded for ``tenant``, for the audit log's filter (cached a minute:
    a DISTINCT over a long log is not paid per request)."""
    key = f"tenants:audit-actions:{tenant.pk}"
    found = cache.get(key)
    if found is None:
        found = list(AuditEvent.objects.for_tenant(tenant).order_by("action").values_list("action", flat=True).distinct()[:200])
        cache.set(key, found, 60)
    return list(found)


def audit_count_since(tenant: Tenant, *, days: int) -> int:
    return AuditEvent.objects.for_tenant(tenant).filter(at__gte=timezone.now() - timedelta(days=days)).count()


def audit_changes(event: AuditEvent) -> list[dict[str, Any]]:
    """``before``/``after`` as rows ``{"field", "before", "after", "changed"}`` for display."""
    before, after = event.before or {}, event.after or {}
    rows = []
    for name in dict.fromkeys([*before, *after]):
        old, new = before.get(name), after.get(name)
        rows.append({"field": name, "label": name.replace("_", " "), "before": _audit_value(old, name), "after": _audit_value(new, name),
                     "changed": name in before and name in after and old != new,
                     "removed": name in before and name not in after})
    return rows


# Money fields: task_cost_cap, max_amount, cost_usd… (not iteration_cap or max_tokens: counts).
_MONEY_FIELD = re.compile(r"cost|usd|amount|price")
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _audit_value(value: Any, field: str = "") -> str:
    """A recorded value as a person reads it: nothing as a dash, yes/no, lists comma-separated,
    dicts as ``key: value`` pairs, a timestamp in the viewer's time zone with the zone, and a money
    field as the console shows money (``$4.00``, not ``4.0000000000``)."""
    if value is None or value == "" or value == [] or value == {}:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if _MONEY_FIELD.search(field) and isinstance(value, (str, int, float, Decimal)) and money_str(value) is not None:
        return usd_display(value)
    if isinstance(value, list):
        return ", ".join(_audit_value(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k.replace('_', ' ')}: {_audit_value(v, k)}" for k, v in sorted(value.items()))
    if isinstance(value, str) and _ISO_DATETIME.match(value):
        parsed = parse_datetime(value)
        if parsed is not None:
            return date_format(timezone.localtime(parsed) if timezone.is_aware(parsed) else parsed, "Y-m-d H:i T")
    return str(value)
