"""Writes for tenants: invitations, members, roles, API keys, webhook endpoints. Each is one transaction with an audit row.

There is deliberately no way to add an existing user by username: that answered "no such user"
or showed the user's e-mail, so any tenant admin could probe every account on the platform.
People join a tenant only by accepting an invitation sent to their e-mail address.

(Just over 400 lines on purpose: every tenant write and its audit row side by side, so a reviewer
sees that none skips the audit.)
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from tenants.models import (
    ROLE_RANK,
    ApiKey,
    ApiScope,
    AuditEvent,
    Invitation,
    Membership,
    Profile,
    Role,
    Tenant,
    WebhookEndpoint,
    webhook_secret_generate,
)
from tenants.selectors import InvitationInvalid, invitation_check, normalize_email, token_looks_valid
from tenants.webhooks import webhook_url_check
from tenants.zones import is_zone

User = get_user_model()
logger = logging.getLogger(__name__)


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


def _invitation_expiry(now: datetime) -> datetime:
    return now + timedelta(days=settings.INVITATION_MAX_AGE_DAYS)


@transaction.atomic
def invitation_create(
    *, tenant: Tenant, actor_membership: Membership, email: str, role: str, now: datetime | None = None
) -> tuple[Invitation, str]:
    """Invite ``email`` with ``role``. Returns the row and the raw token, which only the e-mail carries.

    No user is looked up: the answer is the same whether the address belongs to an account, to a
    member, or to nobody. Inviting an address that already has an open invitation re-issues that
    one (new token, role and expiry; the old link stops working).
    """
    _check_can_grant(actor_membership, role)
    email = normalize_email(email)
    now = now or timezone.now()
    raw = Invitation.generate_token()
    fields = {
        "role": role, "token_hash": Invitation.hash_token(raw), "invited_by": actor_membership.user,
        "sent_at": now, "expires_at": _invitation_expiry(now),
    }
    invitation = Invitation.objects.for_tenant(tenant).open().select_for_update().filter(email=email).first()
    before = None
    if invitation is None:
        try:
            with transaction.atomic():
                invitation = Invitation.objects.create(tenant=tenant, email=email, created_at=now, **fields)
        except IntegrityError:  # a concurrent invitation of the same address won the race
            raise ValidationError("That address was invited at the same moment by someone else.")
    else:
        before = {"email": email, "role": invitation.role}
        for name, value in fields.items():
            setattr(invitation, name, value)
        invitation.save(update_fields=list(fields))
    audit_record(
        tenant=tenant, actor=actor_membership.user, action="invitation.create", target=invitation,
        before=before, after={"email": email, "role": role, "expires_at": invitation.expires_at.isoformat()},
    )
    return invitation, raw


@transaction.atomic
def invitation_resend(*, tenant: Tenant, actor: Any, invitation_id: int, now: datetime | None = None) -> tuple[Invitation, str]:
    """Issue a new token and expiry for an open invitation (the old link stops working).

    Raises ``Invitation.DoesNotExist`` for an id outside ``tenant``, ``ValidationError`` when it
    was accepted or revoked.
    """
    now = now or timezone.now()
    invitation = Invitation.objects.for_tenant(tenant).select_for_update().filter(pk=invitation_id).first()
    if invitation is None:
        raise Invitation.DoesNotExist
    if not invitation.is_open():
        raise ValidationError("That invitation was already accepted or revoked.")
    raw = Invitation.generate_token()
    invitation.token_hash = Invitation.hash_token(raw)
    invitation.sent_at, invitation.expires_at = now, _invitation_expiry(now)
    invitation.save(update_fields=["token_hash", "sent_at", "expires_at"])
    audit_record(
        tenant=tenant, actor=actor, action="invitation.resend", target=invitation,
        after={"email": invitation.email, "role": invitation.role, "expires_at": invitation.expires_at.isoformat()},
    )
    return invitation, raw


@transaction.atomic
def invitation_revoke(*, tenant: Tenant, actor: Any, invitation_id: int, now: datetime | None = None) -> Invitation:
    """Withdraw an open invitation (idempotent). Raises ``Invitation.DoesNotExist`` for an id outside ``tenant``."""
    invitation = Invitation.objects.for_tenant(tenant).select_for_update().filter(pk=invitation_id).first()
    if invitation is None:
        raise Invitation.DoesNotExist
    if invitation.accepted_at is not None:
        raise ValidationError("That invitation was already accepted; remove the member instead.")
    if invitation.revoked_at is None:
        invitation.revoked_at = now or timezone.now()
        invitation.save(update_fields=["revoked_at"])
        audit_record(
            tenant=tenant, actor=actor, action="invitation.revoke", target=invitation,
            before={"email": invitation.email, "role": invitation.role, "open": True},
            after={"email": invitation.email, "role": invitation.role, "open": False},
        )
    return invitation


def invitation_send(*, invitation: Invitation, accept_url: str) -> bool:
    """E-mail the link through Django's e-mail backend. False (and a log line without the link) on failure.

    Called after the transaction that issued the token has committed, with the raw token inside
    ``accept_url``; the token is never stored, queued or logged.
    """
    context = {"invitation": invitation, "tenant": invitation.tenant, "accept_url": accept_url,
               "role": Role(invitation.role).label, "inviter": invitation.invited_by}
    subject = render_to_string("tenants/email/invitation_subject.txt", context).strip()
    body = render_to_string("tenants/email/invitation_body.txt", context)
    try:
        send_mail(subject, body, None, [invitation.email])
    except OSError as exc:  # smtplib.SMTPException and connection errors
        logger.warning("invitation %s: e-mail not sent (%s)", invitation.pk, type(exc).__name__)
        return False
    return True


def _lock_invitation(raw_token: str, now: datetime) -> Invitation:
    """The invitation for ``raw_token``, locked, or ``InvitationInvalid`` saying why not."""
    if not token_looks_valid(raw_token):
        raise InvitationInvalid("unknown")
    # of=("self",): lock the invitation only, not the tenant row the check joins.
    candidates = Invitation.unscoped.select_for_update(of=("self",)).filter(token_hash=Invitation.hash_token(raw_token))
    return invitation_check(candidates, now=now)


def _accept(invitation: Invitation, user: Any, now: datetime) -> tuple[Membership, bool]:
    try:
        with transaction.atomic():
            membership, created = Membership.objects.get_or_create(
                tenant=invitation.tenant, user=user, defaults={"role": invitation.role, "created_at": now}
            )
    except IntegrityError:  # the same user accepted twice at once through two invitations
        membership, created = Membership.objects.get(tenant=invitation.tenant, user=user), False
    invitation.accepted_at, invitation.accepted_by = now, user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    audit_record(
        tenant=invitation.tenant, actor=user, action="invitation.accept", target=invitation,
        after={"email": invitation.email, "user": user.username, "role": membership.role, "already_member": not created},
    )
    return membership, created


@transaction.atomic
def invitation_accept(*, raw_token: str, user: Any, now: datetime | None = None) -> tuple[Membership, bool]:
    """Accept as the signed-in ``user``. Returns the membership and whether it is new.

    A user who is already a member keeps the role they have; the invitation is used up either way.
    Raises ``InvitationInvalid`` for an unknown, used, revoked or expired token.
    """
    now = now or timezone.now()
    return _accept(_lock_invitation(raw_token, now), user, now)


@transaction.atomic
def invitation_accept_new_user(*, raw_token: str, password: str, now: datetime | None = None) -> tuple[Any, Membership]:
    """Create an account for the invited address and accept with it, in one transaction.

    The username is the invited address (see ``InvitationSignupForm`` for why it is not chosen).
    Only whoever reads that mailbox gets here, so "this address already has an account" tells
    them about their own address and nothing else.
    """
    now = now or timezone.now()
    invitation = _lock_invitation(raw_token, now)
    taken = ValidationError("An account with this address already exists. Log in to accept instead.")
    if User.objects.filter(username__iexact=invitation.email).exists():
        raise taken
    try:
        with transaction.atomic():
            user = User(username=invitation.email, email=invitation.email, date_joined=now)
            user.set_password(password)
            user.save()
    except IntegrityError:  # a concurrent accept of another invitation to the same address
        raise taken
    membership, _ = _accept(invitation, user, now)
    return user, membership


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


def profile_time_zone_set(*, user: Any, time_zone: str) -> Profile:
    """The person's own time zone for the console ("" follows each tenant's)."""
    if time_zone and not is_zone(time_zone):
        raise ValidationError(f"Unknown time zone {time_zone!r}: pick one from the list.")
    profile, _ = Profile.objects.update_or_create(user=user, defaults={"time_zone": time_zone})
    return profile


@transaction.atomic
def tenant_time_zone_set(*, tenant: Tenant, actor: Any, time_zone: str) -> Tenant:
    """The zone the console uses for members who have not chosen their own."""
    if not is_zone(time_zone):
        raise ValidationError(f"Unknown time zone {time_zone!r}: pick one from the list.")
    before = tenant.time_zone
    tenant.time_zone = time_zone
    tenant.save(update_fields=["time_zone"])
    audit_record(tenant=tenant, actor=actor, action="tenant.time_zone", target=tenant,
                 before={"time_zone": before}, after={"time_zone": time_zone})
    return tenant
