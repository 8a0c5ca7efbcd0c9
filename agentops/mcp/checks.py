"""System checks: ``MCP_UNSAFE_ALLOW_NETWORKS`` must parse, and should be empty in production."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Tags, register

from tenants.checks import allow_networks_empty, allow_networks_parse


@register(Tags.security)
def mcp_allow_networks_parse(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    return allow_networks_parse("MCP_UNSAFE_ALLOW_NETWORKS", "mcp.E001")


@register(Tags.security, deploy=True)
def mcp_allow_networks_empty(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    return allow_networks_empty(
        "MCP_UNSAFE_ALLOW_NETWORKS",
        "mcp.W001",
        "MCP servers",
        "It exists for tests and the local demo (a server on 127.0.0.1); leave it empty in production.",
    )
