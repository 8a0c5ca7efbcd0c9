"""System checks: ``MCP_UNSAFE_ALLOW_NETWORKS`` must parse, and should be empty in production."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from agentops.netguard import parse_networks


@register(Tags.security)
def mcp_allow_networks_parse(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    try:
        parse_networks(settings.MCP_UNSAFE_ALLOW_NETWORKS)
    except (TypeError, ValueError) as exc:
        return [Error(f"MCP_UNSAFE_ALLOW_NETWORKS has an entry that is not a network: {exc}", id="mcp.E001")]
    return []


@register(Tags.security, deploy=True)
def mcp_allow_networks_empty(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if settings.MCP_UNSAFE_ALLOW_NETWORKS:
        return [
            Warning(
                "MCP_UNSAFE_ALLOW_NETWORKS is not empty: MCP servers may be registered on those internal addresses.",
                hint="It exists for tests and the local demo (a server on 127.0.0.1); leave it empty in production.",
                id="mcp.W001",
            )
        ]
    return []
