"""Writes for tenants: members, roles, API keys. Each is one transaction with an audit row."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from tenants.models import ROLE_RANK, ApiKey, ApiScope, AuditEvent, Membership, Role, Tenant

User = get_user_model()


def audit_record(
    *,
    tenant: Tenant,
    actor: Any | None,
    action: str,
    target: Any,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    actor_key: ApiKey | None = None,
) -> AuditEvent:
    return AuditEvent.objects.create(
        tenant=tenant,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        actor_key=actor_key,
        action=action,
        target_type=type(target).__name__,
        target_id=str(getattr(target, "pk", "") or ""),
        target_repr=str(target)[:200],
        before=before,
        after=after,
    )


def _check_can_grant(actor_membership: Membership, role: str) -> None:
    if role not in Role.values:
        raise ValidationError("Unknown role.")
    if ROLE_RANK[Role(role)] > ROLE_RANK[Role(actor_membership.role)]:
        raise PermissionDenied("You cannot grant a role above your own.")


def _admin_count(tenant: Tenant) -> int:
    return Membership.objects.select_for_update().filter(tenant=tenant, role=Role.ADMIN).count()


@transaction.atomic
def membership_add(*, tenant: Tenant, actor_membership: Membership, username: str, role: str) -> Membership:
    _check_can_grant(actor_membership, role)
    user = User.objects.filter(username=username, is_active=True).first()
    if user is None:
        raise ValidationError("No active user with that username.")
    if Membership.objects.filter(tenant=tenant, user=user).exists():
        raise ValidationError("That user is already a member.")
    membership = Membership.objects.create(tenant=tenant, user=user, role=role)
    audit_record(tenant=tenant, actor=actor_membership.user, action="member.add", target=membership, after={"user": username, "role": role})
    return membership


@transaction.atomic
def membership_change_role(*, tenant: Tenant, actor_membership: Membership, membership_id: int, role: str) -> Membership:
    _check_can_grant(actor_membership, role)
    membership = Membership.objects.select_for_update().filter(tenant=tenant, pk=membership_id).first()
    if membership is None:
        raise Membership.DoesNotExist
    before = membership.role
    if before == Role.ADMIN and role != Role.ADMIN and _admin_count(tenant) <= 1:
        raise ValidationError("A tenant must keep at least one admin.")
    membership.role = role
    membership.save(update_fields=["role"])
    audit_record(tenant=tenant, actor=actor_membership.user, action="member.role", target=membership, before={"role": before}, after={"role": role})
    return membership


@transaction.atomic
def membership_remove(*, tenant: Tenant, actor_membership: Membership, membership_id: int) -> None:
    membership = Membership.objects.select_for_update().filter(tenant=tenant, pk=membership_id).first()
    if membership is None:
        raise Membership.DoesNotExist
    if membership.role == Role.ADMIN and _admin_count(tenant) <= 1:
        raise ValidationError("You cannot remove the last admin.")
    audit_record(
        tenant=tenant, actor=actor_membership.user, action="member.remove", target=membership,
        before={"user": membership.user.username, "role": membership.role},
    )
    membership.delete()


@transaction.atomic
def api_key_create(
    *, tenant: Tenant, actor: Any, name: str, scopes: list[str], acts_as_role: str = Role.OPERATOR
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the raw key, which is never stored or shown again."""
    bad = set(scopes) - set(ApiScope.values)
    if bad or not scopes:
        raise ValidationError("Unknown or missing scopes.")
    if acts_as_role == Role.ADMIN or acts_as_role not in Role.values:
        raise ValidationError("API keys cannot act as admin.")
    prefix, raw = ApiKey.generate()
    key = ApiKey.objects.create(
        tenant=tenant, name=name, prefix=prefix, hashed=ApiKey.hash_secret(raw), scopes=sorted(set(scopes)),
        created_by=actor if getattr(actor, "is_authenticated", False) else None, acts_as_role=acts_as_role,
    )
    audit_record(tenant=tenant, actor=actor, action="apikey.create", target=key, after={"name": name, "scopes": key.scopes, "prefix": prefix})
    return key, raw


@transaction.atomic
def api_key_revoke(*, tenant: Tenant, actor: Any, key_id: int) -> ApiKey:
    key = ApiKey.objects.for_tenant(tenant).select_for_update().filter(pk=key_id).first()
    if key is None:
        raise ApiKey.DoesNotExist
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        audit_record(tenant=tenant, actor=actor, action="apikey.revoke", target=key, before={"active": True}, after={"active": False})
    return key


def api_key_authenticate(raw: str) -> ApiKey | None:
    if not raw.startswith("aok_") or len(raw) > 200:
        return None
    key = (
        ApiKey.unscoped.select_related("tenant", "tenant__tier")
        .filter(hashed=ApiKey.hash_secret(raw), revoked_at__isnull=True, tenant__active=True)
        .first()
    )
    if key is not None:
        now = timezone.now()
        # Touch at most once a minute: no write per request on the hot path.
        if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
            ApiKey.unscoped.filter(pk=key.pk).update(last_used_at=now)
    return key
