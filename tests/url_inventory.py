"""Walks the URL resolver so the isolation tests cover every URL without anyone listing it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver

# Routes outside /t/<slug>/ and /api/ that are deliberately not tenant-scoped.
UNSCOPED_ALLOWED = {
    "", "login/", "logout/", "healthz", "readyz",
    # Accepting an invitation: the person is not a member yet, so the tenant cannot be in the URL;
    # the link's single-use, expiring token is the credential (tests/tenants/test_invitations.py).
    "invite/<str:token>/", "invite/accept/",
}
UNSCOPED_PREFIXES = ("admin/", "django-rq/", "staff/")


@dataclass
class Route:
    route: str
    name: str | None
    callback: Any
    converters: dict[str, str]

    def build(self, **values: Any) -> str:
        path = self.route
        for key in self.converters:
            path = re.sub(rf"<(?:\w+:)?{key}>", str(values[key]), path)
        return "/" + path


def _walk(patterns: list[Any], prefix: str = "") -> list[Route]:
    routes: list[Route] = []
    for p in patterns:
        if isinstance(p, URLResolver):
            routes.extend(_walk(p.url_patterns, prefix + str(p.pattern)))
        elif isinstance(p, URLPattern):
            route = prefix + str(p.pattern)
            converters = {m.group(2): m.group(1) or "str" for m in re.finditer(r"<(?:(\w+):)?(\w+)>", route)}
            routes.append(Route(route=route, name=p.name, callback=p.callback, converters=converters))
    return routes


def all_routes() -> list[Route]:
    return _walk(get_resolver().url_patterns)


def tenant_routes() -> list[Route]:
    return [r for r in all_routes() if r.route.startswith("t/<slug:slug>/")]


def api_routes() -> list[Route]:
    return [r for r in all_routes() if r.route.startswith("api/")]


def escaping_routes() -> list[str]:
    """Routes that are neither tenant-scoped, API, nor on the explicit public list."""
    bad = []
    for r in all_routes():
        if r.route.startswith(("t/<slug:slug>/", "api/")) or r.route in UNSCOPED_ALLOWED:
            continue
        if r.route.startswith(UNSCOPED_PREFIXES) or r.route.startswith("^"):
            continue
        bad.append(r.route)
    return bad
