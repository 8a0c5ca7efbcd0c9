"""Idempotent seed for the demo: staff user, three tiers, three tenants, one user per role, keys.

Running it again updates rows in place (``update_or_create`` on natural keys) and replaces each
tenant's demo API key: the previous one is revoked through the service (so the audit log says so),
and keys revoked by earlier runs are deleted so the keys page does not fill up with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import transaction

from agentops.demo.context import DemoContext
from tenants.models import ApiKey, ApiScope, Membership, Role, Tenant, Tier
from tenants.services import api_key_create, api_key_revoke

DEMO_PASSWORD = "agentops-demo"
STAFF_USERNAME = "platform"
DEMO_KEY_NAME = "demo key"


@dataclass(frozen=True)
class TierSpec:
    slug: str
    name: str
    task: str
    user_day: str
    user_month: str
    tenant_month: str
    concurrent: int
    rate: int


TIERS = [
    TierSpec("starter", "Starter", task="1", user_day="5", user_month="50", tenant_month="200", concurrent=3, rate=60),
    TierSpec("team", "Team", task="5", user_day="20", user_month="200", tenant_month="1000", concurrent=10, rate=120),
    TierSpec("enterprise", "Enterprise", task="25", user_day="100", user_month="1500", tenant_month="20000", concurrent=50, rate=600),
]

# (slug, name, tier slug)
TENANTS = [
    ("acme", "Acme Support", "team"),
    ("globex", "Globex Grants", "enterprise"),
    ("initech", "Initech", "starter"),
]

# A user in all three tenants with a different role in each, to show the tenant switcher.
CONSULTANT = ("consultant", {"acme": Role.OPERATOR, "globex": Role.FINANCE, "initech": Role.VIEWER})


def demo_username(slug: str, role: str) -> str:
    return f"{slug}-{role.replace('_', '-')}"


def _user(username: str, password_hash: str, **flags: Any) -> Any:
    user, _ = get_user_model().objects.update_or_create(
        username=username,
        defaults={"email": f"{username}@example.test", "password": password_hash, "is_active": True, **flags},
    )
    return user


@transaction.atomic
def seed_platform(*, password: str = DEMO_PASSWORD) -> tuple[dict[str, Tenant], dict[str, dict[str, Any]], Any]:
    """Tiers, tenants, users and memberships. Returns ``(tenants, users by slug and role, staff)``."""
    # One hash for every demo user: hashing is deliberately slow, and there are a dozen and more users.
    password_hash = make_password(password)
    staff = _user(STAFF_USERNAME, password_hash, is_staff=True, is_superuser=True, first_name="Platform", last_name="Staff")

    tiers: dict[str, Tier] = {}
    for spec in TIERS:
        tiers[spec.slug], _ = Tier.objects.update_or_create(
            slug=spec.slug,
            defaults={
                "name": spec.name,
                "task_cost_cap": Decimal(spec.task),
                "user_day_cost_cap": Decimal(spec.user_day),
                "user_month_cost_cap": Decimal(spec.user_month),
                "tenant_month_cost_cap": Decimal(spec.tenant_month),
                "max_concurrent_runs": spec.concurrent,
                "api_rate_limit_per_minute": spec.rate,
            },
        )

    tenants: dict[str, Tenant] = {}
    users: dict[str, dict[str, Any]] = {}
    for slug, name, tier_slug in TENANTS:
        tenant, _ = Tenant.objects.update_or_create(slug=slug, defaults={"name": name, "tier": tiers[tier_slug], "active": True})
        tenants[slug] = tenant
        users[slug] = {}
        for role in Role.values:
            user = _user(demo_username(slug, role), password_hash)
            Membership.objects.update_or_create(user=user, tenant=tenant, defaults={"role": role})
            users[slug][role] = user

    username, roles = CONSULTANT
    consultant = _user(username, password_hash)
    for slug, role in roles.items():
        Membership.objects.update_or_create(user=consultant, tenant=tenants[slug], defaults={"role": role})
    return tenants, users, staff


def rotate_demo_key(*, tenant: Tenant, actor: Any) -> tuple[ApiKey, str]:
    """Revoke the tenant's previous demo key and create a fresh one (every scope)."""
    demo_keys = ApiKey.objects.for_tenant(tenant).filter(name=DEMO_KEY_NAME)
    demo_keys.filter(revoked_at__isnull=False).delete()
    for key_id in demo_keys.filter(revoked_at__isnull=True).values_list("pk", flat=True):
        api_key_revoke(tenant=tenant, actor=actor, key_id=key_id)
    return api_key_create(
        tenant=tenant, actor=actor, name=DEMO_KEY_NAME,
        scopes=list(ApiScope.values), acts_as_role=Role.OPERATOR,
    )


def seed(*, stdout: Any, redis_ok: bool, base_url: str, password: str = DEMO_PASSWORD) -> DemoContext:
    tenants, users, staff = seed_platform(password=password)
    ctx = DemoContext(tenants=tenants, users=users, api_keys={}, stdout=stdout, redis_ok=redis_ok,
                      base_url=base_url, password=password, staff=staff)
    for slug, tenant in tenants.items():
        row, raw = rotate_demo_key(tenant=tenant, actor=users[slug][Role.ADMIN])
        ctx.api_keys[slug], ctx.key_rows[slug] = raw, row
    ctx.extra_logins.append((CONSULTANT[0], "in all three tenants, a different role in each (tenant switcher)"))
    return ctx
