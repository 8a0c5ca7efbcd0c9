"""Writes for tenants: members, roles, API keys, webhook endpoints. Each is one transaction with an audit row."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from tenants.models import (
    ROLE_RANK,
    ApiKey,
    ApiScope,
    AuditEvent,
    Membership,
    Role,
    Tenant,
    WebhookEndpoint,
    webhook_secret_generate,
)
from tenants.webhooks import webhook_url_check

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


def _lock_admins(tenant: Tenant) -> list[int]:
    """Lock the tenant's admin memberships (in pk order, so concurrent callers cannot deadlock).

    ``select_for_update().count()`` would not lock anything (an aggregate drops FOR UPDATE), and two
    admins demoting each other at the same moment could then leave the tenant without one.
    """
    return list(
        Membership.objects.select_for_update()
        .filter(tenant=tenant, role=Role.ADMIN)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


@transaction.atomic
def membership_add(*, tenant: Tenant, actor_membership: Membership, username: str, role: str) -> Membership:
    _check_can_grant(actor_membership, role)
    user = User.objects.filter(username=username.strip(), is_active=True).first()
    if user is None:
        raise ValidationError("No active user with that username.")
    if Membership.objects.filter(tenant=tenant, user=user).exists():
        raise ValidationError("That user is already a member.")
    try:
        with transaction.atomic():
            membership = Membership.objects.create(tenant=tenant, user=user, role=role)
    except IntegrityError:  # a concurrent add of the same user won the race
        raise ValidationError("That user is already a member.")
    audit_record(
        tenant=tenant, actor=actor_membership.user, action="member.add", target=membership,
        after={"user": user.username, "role": role},
    )
    return membership


@transaction.atomic
def membership_change_role(*, tenant: Tenant, actor_membership: Membership, membership_id: int, role: str) -> Membership:
    """Change a member's role. Raises ``Membership.DoesNotExist`` for an id outside ``tenant``."""
    _check_can_grant(actor_membership, role)
    admins = _lock_admins(tenant)
    membership = Membership.objects.select_for_update().select_related("user").filter(tenant=tenant, pk=membership_id).first()
    if membership is None:
        raise Membership.DoesNotExist
    before = membership.role
    if before == role:
        return membership
    if before == Role.ADMIN and len(admins) <= 1:
        raise ValidationError("A tenant must keep at least one admin.")
    membership.role = role
    membership.save(update_fields=["role"])
    audit_record(
        tenant=tenant, actor=actor_membership.user, action="member.role", target=membership,
        before={"user": membership.user.username, "role": before}, after={"user": membership.user.username, "role": role},
    )
    return membership


@transaction.atomic
def membership_remove(*, tenant: Tenant, actor_membership: Membership, membership_id: int) -> None:
    """Remove a member. Raises ``Membership.DoesNotExist`` for an id outside ``tenant``."""
    admins = _lock_admins(tenant)
    membership = Membership.objects.select_for_update().select_related("user").filter(tenant=tenant, pk=membership_id).first()
    if membership is None:
        raise Membership.DoesNotExist
    if membership.role == Role.ADMIN and len(admins) <= 1:
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
    name = name.strip()
    if not name or len(name) > 100:
        raise ValidationError("A key needs a name of at most 100 characters.")
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
    audit_record(
        tenant=tenant, actor=actor, action="apikey.create", target=key,
        after={"name": name, "scopes": key.scopes, "prefix": prefix, "acts_as_role": acts_as_role},
    )
    return key, raw


@transaction.atomic
def api_key_revoke(*, tenant: Tenant, actor: Any, key_id: int) -> ApiKey:
    """Revoke a key (idempotent). Raises ``ApiKey.DoesNotExist`` for an id outside ``tenant``."""
    key = ApiKey.objects.for_tenant(tenant).select_for_update().filter(pk=key_id).first()
    if key is None:
        raise ApiKey.DoesNotExist
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        audit_record(
            tenant=tenant, actor=actor, action="apikey.revoke", target=key,
            before={"active": True, "prefix": key.prefix}, after={"active": False, "prefix": key.prefix},
        )
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


def webhook_endpoint_create(*, tenant: Tenant, actor: Any, url: str) -> tuple[WebhookEndpoint, str]:
    """Add an endpoint; returns it and its signing secret, which the console shows once.

    The URL must pass the SSRF guard (DNS included), checked before the transaction opens so no
    lock is held across a lookup. Raises ``ValidationError`` with the reason otherwise.
    """
    url = (url or "").strip()
    webhook_url_check(url)
    with transaction.atomic():
        # The tenant row serialises concurrent creates, so the per-tenant cap holds.
        Tenant.objects.select_for_update().filter(pk=tenant.pk).first()
        if WebhookEndpoint.objects.for_tenant(tenant).count() >= WebhookEndpoint.MAX_PER_TENANT:
            raise ValidationError(f"A tenant can have at most {WebhookEndpoint.MAX_PER_TENANT} webhook endpoints.")
        endpoint = WebhookEndpoint.objects.create(
            tenant=tenant, url=url, created_by=actor if getattr(actor, "is_authenticated", False) else None
        )
        # The host only: neither the secret nor the URL's path (it can be a credential) goes in the log.
        audit_record(tenant=tenant, actor=actor, action="webhook.create", target=endpoint, after={"host": endpoint.host})
    return endpoint, endpoint.secret


@transaction.atomic
def webhook_endpoint_rotate(*, tenant: Tenant, actor: Any, endpoint_id: int) -> tuple[WebhookEndpoint, str]:
    """Replace the signing secret at once (the old one stops verifying); returns the new one, shown once.

    Raises ``WebhookEndpoint.DoesNotExist`` for an id outside ``tenant``.
    """
    endpoint = WebhookEndpoint.objects.for_tenant(tenant).select_for_update().filter(pk=endpoint_id).first()
    if endpoint is None:
        raise WebhookEndpoint.DoesNotExist
    endpoint.secret = webhook_secret_generate()
    endpoint.secret_rotated_at = timezone.now()
    endpoint.save(update_fields=["secret", "secret_rotated_at"])
    audit_record(tenant=tenant, actor=actor, action="webhook.rotate", target=endpoint, after={"host": endpoint.host})
    return endpoint, endpoint.secret


@transaction.atomic
def webhook_endpoint_delete(*, tenant: Tenant, actor: Any, endpoint_id: int) -> WebhookEndpoint:
    """Delete an endpoint; its past deliveries stay. Raises ``WebhookEndpoint.DoesNotExist`` outside ``tenant``."""
    endpoint = WebhookEndpoint.objects.for_tenant(tenant).select_for_update().filter(pk=endpoint_id).first()
    if endpoint is None:
        raise WebhookEndpoint.DoesNotExist
    audit_record(tenant=tenant, actor=actor, action="webhook.delete", target=endpoint, before={"host": endpoint.host})
    endpoint.delete()
    return endpoint
