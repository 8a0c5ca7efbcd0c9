"""Tenants, tiers, memberships, API keys and the audit log.

Every tenant-owned model inherits :class:`TenantOwned`; its manager's ``for_tenant()`` is the
normal way in. The plain ``objects`` manager is still there for Django admin and migrations, so
code that needs an unscoped query must say ``TenantOwned.unscoped`` to be visible in review.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from decimal import Decimal
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

# Typed as Any so the ** unpacking type-checks against DecimalField's keyword arguments.
MONEY: dict[str, Any] = {"max_digits": 20, "decimal_places": 10}


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    OPERATOR = "operator", "Operator"
    PROMPT_EDITOR = "prompt_editor", "Prompt editor"
    FINANCE = "finance", "Finance"
    VIEWER = "viewer", "Viewer"


ALL_ROLES: frozenset[str] = frozenset(Role.values)
# Used to refuse privilege escalation: an actor may grant only roles at or below its own rank.
ROLE_RANK = {Role.VIEWER: 0, Role.FINANCE: 1, Role.PROMPT_EDITOR: 1, Role.OPERATOR: 1, Role.ADMIN: 2}


class Tier(models.Model):
    """A plan. Its caps are the defaults and the upper limits for its tenants."""

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=100)
    task_cost_cap = models.DecimalField(**MONEY, default=Decimal("5"), validators=[MinValueValidator(0)])
    user_day_cost_cap = models.DecimalField(**MONEY, default=Decimal("20"), validators=[MinValueValidator(0)])
    user_month_cost_cap = models.DecimalField(**MONEY, default=Decimal("200"), validators=[MinValueValidator(0)])
    tenant_month_cost_cap = models.DecimalField(**MONEY, default=Decimal("1000"), validators=[MinValueValidator(0)])
    max_concurrent_runs = models.PositiveIntegerField(default=10)
    allowed_models = models.JSONField(default=list, blank=True, help_text="Empty means every priced model.")
    api_rate_limit_per_minute = models.PositiveIntegerField(default=120)

    def __str__(self) -> str:
        return self.name


class Tenant(models.Model):
    slug = models.SlugField(unique=True, validators=[RegexValidator(r"^[a-z0-9][a-z0-9-]{1,48}$")])
    name = models.CharField(max_length=200)
    tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="tenants")
    active = models.BooleanField(default=True)
    # Kill switch: refuses new runs and pauses running ones for the whole tenant.
    runs_disabled = models.BooleanField(default=False)
    # Policy: gate every call of an irreversible tool behind a human, whatever the grant says.
    gate_irreversible_tools = models.BooleanField(default=True)
    # The IANA zone the console shows times in for members who have not chosen their own.
    time_zone = models.CharField(max_length=64, default="UTC")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class Profile(models.Model):
    """A person's own console settings, the same in every tenant they belong to."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="console_profile")
    # An IANA zone; blank follows the tenant's time zone.
    time_zone = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"settings of {self.user}"


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "tenant"], name="one_membership_per_tenant")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant.slug} ({self.role})"


class TenantQuerySet(models.QuerySet):
    def for_tenant(self, tenant: Tenant | int) -> Self:
        tenant_id = tenant if isinstance(tenant, int) else tenant.pk
        return self.filter(tenant_id=tenant_id)


class TenantOwned(models.Model):
    """Abstract base for every row that belongs to a tenant."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")

    objects: ClassVar[Any] = TenantQuerySet.as_manager()
    # The explicit escape hatch for platform-wide code (reconcilers, staff views, rollups).
    unscoped: ClassVar[Any] = models.Manager()

    class Meta:
        abstract = True


class ApiScope(models.TextChoices):
    RUNS = "runs", "Submit and read runs"
    ESCALATIONS = "escalations", "List and decide escalations"
    SPEND = "spend", "Read spend"
    EVALS = "evals", "Start and read eval runs"
    PROMPTS = "prompts", "Read and version prompts, move labels"
    MEMORY = "memory", "List facts by subject, erase a subject"


class ApiKey(TenantOwned):
    """A tenant API key. Only a SHA-256 of the secret is stored; the key is shown once."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    hashed = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    # The role the key acts with when grants are checked (keys never act as admin).
    acts_as_role = models.CharField(max_length=20, choices=Role.choices, default=Role.OPERATOR)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @staticmethod
    def hash_secret(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()

    @staticmethod
    def generate() -> tuple[str, str]:
        """Return ``(prefix, raw_key)``; the raw key is ``aok_<prefix>_<secret>``."""
        prefix = secrets.token_hex(4)
        return prefix, f"aok_{prefix}_{secrets.token_urlsafe(32)}"


class AuditEvent(TenantOwned):
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64)
    target_repr = models.CharField(max_length=200, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]
        # The audit log newest first, and filtered by one action (a page is an index range either way).
        indexes = [models.Index(fields=["tenant", "-at"]), models.Index(fields=["tenant", "action", "-at", "-id"], name="tenants_audit_action_at")]

    def __str__(self) -> str:
        return f"{self.action} {self.target_type}:{self.target_id}"


def webhook_secret_generate() -> str:
    """A Standard Webhooks secret: ``whsec_`` and the base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class WebhookEndpoint(TenantOwned):
    """A URL that receives the tenant's webhooks, signed with its own Standard Webhooks secret.

    The URL passed the SSRF guard when it was saved and is checked again at every delivery
    (:mod:`tenants.webhooks`). The secret is shown to the admin once, at creation and at each
    rotation; it is stored because signing needs it, and never logged or put in an audit row.
    """

    MAX_PER_TENANT = 5

    url = models.CharField(max_length=2048)
    secret = models.CharField(max_length=100, default=webhook_secret_generate, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    secret_rotated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        # The host only: a path can itself be a credential (Slack's incoming-webhook URLs are).
        return f"webhook endpoint {self.host}"

    @property
    def host(self) -> str:
        try:
            return urlsplit(self.url).hostname or "?"
        except ValueError:
            return "?"


class WebhookDelivery(TenantOwned):
    """One signed webhook POST to one of the tenant's endpoints, with its delivery attempts.

    Sent by :func:`tenants.webhooks.webhook_send` (an RQ job with retries and backoff); the
    console and the escalations capability read it to show what was delivered. ``refused`` means
    the SSRF guard stopped it before any request was sent; ``last_error`` says why.
    """

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    SKIPPED = "skipped"
    REFUSED = "refused"

    endpoint = models.ForeignKey(WebhookEndpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries")
    event = models.CharField(max_length=64)
    url = models.CharField(max_length=2048, blank=True)
    payload = models.JSONField(default=dict)
    status = models.CharField(
        max_length=10,
        choices=[
            (PENDING, "pending"), (DELIVERED, "delivered"), (FAILED, "failed"),
            (SKIPPED, "skipped (no URL)"), (REFUSED, "refused (unsafe address)"),
        ],
        default=PENDING,
    )
    attempts = models.PositiveIntegerField(default=0)
    response_status = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "-created_at"])]

    def __str__(self) -> str:
        return f"webhook {self.event} ({self.status})"

    @property
    def host(self) -> str:
        try:
            return urlsplit(self.url).hostname or ""
        except ValueError:
            return "?"


class InvitationQuerySet(TenantQuerySet):
    def open(self) -> Self:
        """Neither accepted nor revoked (it may still have expired)."""
        return self.filter(accepted_at__isnull=True, revoked_at__isnull=True)


class Invitation(TenantOwned):
    """An invitation of an e-mail address to a tenant, with a role.

    The link in the e-mail carries a random token; only its SHA-256 is stored, so the database
    (or a backup of it) cannot be used to accept an invitation. A token works once, until
    ``expires_at``, and not after a revoke or a resend (which issues a new token).
    """

    email = models.EmailField(max_length=254)
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.VIEWER)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects: ClassVar[Any] = InvitationQuerySet.as_manager()
    unscoped: ClassVar[Any] = models.Manager()

    class Meta:
        ordering = ["-sent_at", "-id"]
        constraints = [
            # One open invitation per address and tenant: inviting again re-sends it.
            models.UniqueConstraint(
                fields=["tenant", "email"], condition=models.Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="one_open_invitation_per_email",
            ),
        ]

    def __str__(self) -> str:
        return f"invitation {self.email} ({self.role})"

    @staticmethod
    def hash_token(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()

    @staticmethod
    def generate_token() -> str:
        return secrets.token_urlsafe(32)

    def is_open(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None

    def is_expired(self, now: Any = None) -> bool:
        return (now or timezone.now()) >= self.expires_at
