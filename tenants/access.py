"""Resolving ``/t/<slug>/…`` to a tenant and the member's role, once, in one decorator.

Non-members (including staff who are not members) get 404 — they learn nothing about the
tenant. Members whose role is too low get 403. Reads (GET/HEAD) and writes (every other method)
take separate role sets, because e.g. a viewer may read runs but not cancel them.

The isolation tests walk the URL resolver and fail for any ``/t/<slug>/`` view that does not
carry the ``tenant_access`` attribute this decorator sets.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse

from tenants import zones
from tenants.models import ALL_ROLES, Membership, Role, Tenant

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class TenantAccess:
    read: frozenset[str]
    write: frozenset[str]


@dataclass
class TenantContext:
    tenant: Tenant
    membership: Membership

    @property
    def role(self) -> str:
        return self.membership.role

    @property
    def user(self) -> Any:
        return self.membership.user

    def has(self, *roles: str) -> bool:
        return self.membership.role in roles


def parse_id(value: object) -> int | None:
    """A positive 64-bit id from a URL segment or body, or None (never a 500 from the database).

    ASCII digits only: ``int()`` would accept "١٢" or " 12" or "1_000", which no id is.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    elif isinstance(value, str):
        text = value
    else:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    ident = int(text)
    return ident if 0 < ident < 2**63 else None


def id_or_404(value: object) -> int:
    ident = parse_id(value)
    if ident is None:
        raise Http404
    return ident


def get_membership(user: Any, slug: str) -> Membership:
    """The caller's membership in tenant ``slug`` or 404 — the same answer for "no such tenant"."""
    if not user.is_authenticated or not isinstance(slug, str) or len(slug) > 50:
        raise Http404("No such tenant.")
    try:
        return Membership.objects.select_related("tenant", "tenant__tier", "user").get(
            user=user, tenant__slug=slug, tenant__active=True
        )
    except Membership.DoesNotExist:
        raise Http404("No such tenant.")


def tenant_view(
    *, read: Iterable[str] = ALL_ROLES, write: Iterable[str] = (Role.ADMIN,)
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    access = TenantAccess(read=frozenset(read), write=frozenset(write))

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @login_required
        @functools.wraps(view)
        def wrapper(request: HttpRequest, slug: str, *args: Any, **kwargs: Any) -> HttpResponse:
            membership = get_membership(request.user, slug)
            allowed = access.read if request.method in SAFE_METHODS else access.write
            if membership.role not in allowed:
                raise PermissionDenied("Your role in this tenant does not allow this.")
            request.tenant_ctx = TenantContext(tenant=membership.tenant, membership=membership)  # type: ignore[attr-defined]
            if not getattr(request, "own_time_zone", ""):
                zones.activate(membership.tenant.time_zone)
            return view(request, request.tenant_ctx, *args, **kwargs)  # type: ignore[attr-defined]

        wrapper.tenant_access = access  # type: ignore[attr-defined]
        return wrapper

    return decorator
