"""Times in the viewer's time zone: the person's own choice (tenants.Profile), else the tenant's,
else UTC. The middleware activates the person's zone for every request; ``tenant_view`` falls back
to the tenant's once it knows the tenant. Templates then show times with ``|date:"… T"``."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from functools import cache
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from tenants.models import Profile


@cache
def zone_names() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones() - {"localtime", "Factory"}))


def is_zone(name: str) -> bool:
    return name in zone_names()


def activate(name: str) -> None:
    """Activate ``name`` (an IANA zone) for this request; an unknown name (a zone removed from the
    tz database since it was saved) falls back to UTC rather than failing the page."""
    if is_zone(name):
        timezone.activate(zoneinfo.ZoneInfo(name))
    else:
        timezone.deactivate()


def own_zone(user: Any) -> str:
    if not getattr(user, "is_authenticated", False):
        return ""
    return Profile.objects.filter(user=user).values_list("time_zone", flat=True).first() or ""


class TimeZoneMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        zone = own_zone(request.user)
        request.own_time_zone = zone  # type: ignore[attr-defined]  # read by tenant_view, which falls back to the tenant's
        activate(zone or "UTC")
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
