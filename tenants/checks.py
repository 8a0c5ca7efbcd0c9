"""System checks for tenant settings that would weaken a production deployment."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from agentops.netguard import parse_networks


def allow_networks_parse(name: str, check_id: str) -> list[CheckMessage]:
    """An Error when the SSRF exemption setting ``name`` has an entry that is not a network."""
    try:
        parse_networks(getattr(settings, name))
    except (TypeError, ValueError) as exc:
        return [Error(f"{name} has an entry that is not a network: {exc}", id=check_id)]
    return []


def allow_networks_empty(name: str, check_id: str, what: str, hint: str) -> list[CheckMessage]:
    """A deploy Warning when the SSRF exemption setting ``name`` is not empty."""
    if getattr(settings, name):
        return [Warning(f"{name} is not empty: {what} may reach those internal addresses.", hint=hint, id=check_id)]
    return []


@register(Tags.security)
def webhook_allow_networks_parse(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    return allow_networks_parse("WEBHOOK_UNSAFE_ALLOW_NETWORKS", "tenants.E001")


@register(Tags.security, deploy=True)
def webhook_allow_networks_empty(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    return allow_networks_empty("WEBHOOK_UNSAFE_ALLOW_NETWORKS", "tenants.W001", "webhooks",
                                "It exists for tests that run a receiver on 127.0.0.1; leave it empty in production.")
