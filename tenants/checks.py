"""System checks for tenant settings that would weaken a production deployment."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from agentops.netguard import parse_networks


@register(Tags.security)
def webhook_allow_networks_parse(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    try:
        parse_networks(settings.WEBHOOK_UNSAFE_ALLOW_NETWORKS)
    except (TypeError, ValueError) as exc:
        return [Error(f"WEBHOOK_UNSAFE_ALLOW_NETWORKS has an entry that is not a network: {exc}", id="tenants.E001")]
    return []


@register(Tags.security, deploy=True)
def webhook_allow_networks_empty(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if settings.WEBHOOK_UNSAFE_ALLOW_NETWORKS:
        return [
            Warning(
                "WEBHOOK_UNSAFE_ALLOW_NETWORKS is not empty: webhooks may reach those internal addresses.",
                hint="It exists for tests that run a receiver on 127.0.0.1; leave it empty in production.",
                id="tenants.W001",
            )
        ]
    return []
