"""Reads of a tenant's MCP servers and tools for the console (always scoped)."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from agentops.mcp.models import McpServer, McpTool, StdioCommand
from tenants.models import Tenant


def servers_for_tenant(tenant: Tenant) -> QuerySet[McpServer]:
    return (
        McpServer.objects.for_tenant(tenant)
        .select_related("stdio_command")
        .annotate(tool_count=Count("tools", filter=Q(tools__listed=True)))
        .order_by("name")
    )


def server_for_tenant(tenant: Tenant, server_id: int) -> McpServer | None:
    return McpServer.objects.for_tenant(tenant).select_related("stdio_command").filter(pk=server_id).first()


def tools_of(tenant: Tenant, server: McpServer) -> QuerySet[McpTool]:
    return McpTool.objects.for_tenant(tenant).filter(server=server).order_by("-listed", "remote_name")


def stdio_commands() -> QuerySet[StdioCommand]:
    return StdioCommand.objects.order_by("key")
