"""Registering MCP servers, refreshing their tool lists, and the admin's choices about each tool.

Every change is written to the tenant's audit log; the auth header never is (nor shown back).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from agentops import netguard
from agentops.harness import evaluators
from agentops.mcp import client, tools
from agentops.mcp.models import (
    SERVER_NAME_RE,
    McpServer,
    McpTool,
    RefreshStatus,
    SideEffect,
    StdioCommand,
    Transport,
)
from agentops.tools.errors import ToolError
from tenants.models import Tenant
from tenants.services import audit_record


def allowed_commands() -> list[StdioCommand]:
    return list(StdioCommand.objects.filter(enabled=True).order_by("key"))


def _public(server: McpServer) -> dict[str, Any]:
    """What the audit log may keep about a server: never the auth header itself."""
    return {
        "name": server.name,
        "transport": server.transport,
        "target": server.target,
        "enabled": server.enabled,
        "auth_header": "set" if server.auth_header else "none",
    }


@transaction.atomic
def server_register(
    *,
    tenant: Tenant,
    actor: Any,
    name: str,
    transport: str,
    url: str = "",
    command_key: str = "",
    auth_header: str = "",
) -> McpServer:
    """Register a server (its tools come with the first refresh). Raises ValidationError."""
    name = (name or "").strip()
    if not re.fullmatch(SERVER_NAME_RE, name):
        raise ValidationError(
            "Name: lower-case letters, digits and dashes, at most 24, starting with a letter or digit."
        )
    if McpServer.objects.for_tenant(tenant).filter(name=name).exists():
        raise ValidationError(f"This tenant already has an MCP server named {name}.")
    server = McpServer(
        tenant=tenant,
        name=name,
        transport=transport,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    if transport == Transport.HTTP:
        try:
            client.vet_url(url)
        except netguard.GuardError as exc:
            raise ValidationError(f"URL refused: {exc}")
        server.url = url
        if any(ch in auth_header for ch in "\r\n\x00"):
            raise ValidationError("The authorization header must be one line.")
        server.auth_header = auth_header.strip()
    elif transport == Transport.STDIO:
        command = StdioCommand.objects.filter(key=command_key, enabled=True).first()
        if command is None:
            raise ValidationError("Choose one of the stdio commands the platform allows.")
        server.stdio_command = command
    else:
        raise ValidationError("Transport must be http or stdio.")
    server.save()
    audit_record(
        tenant=tenant, actor=actor, action="mcp_server.register", target=server, after=_public(server)
    )
    return server


def server_refresh(
    *, tenant: Tenant, actor: Any, server: McpServer, now: datetime | None = None
) -> dict[str, int]:
    """List the server's tools (over the network, outside any transaction) and record them.

    New tools appear enabled, side effect ``write``; one whose description or schema reads like
    injected instructions is recorded with a problem and not offered; a changed schema or description is recorded
    (``schema_changed_at``); a tool no longer listed is kept, marked unlisted, and not offered.
    A failure is recorded on the server (status, error) and re-raised as ToolError."""
    now = now or timezone.now()
    try:
        listed = client.list_tools(tools.endpoint(server))
    except ToolError as exc:
        McpServer.objects.for_tenant(tenant).filter(pk=server.pk).update(
            refreshed_at=now, refresh_status=RefreshStatus.FAILED, refresh_error=exc.message[:500]
        )
        audit_record(
            tenant=tenant,
            actor=actor,
            action="mcp_server.refresh_failed",
            target=server,
            after={"error": exc.message[:500]},
        )
        raise
    return _record_listing(tenant=tenant, actor=actor, server=server, listed=listed, now=now)


@transaction.atomic
def _record_listing(
    *, tenant: Tenant, actor: Any, server: McpServer, listed: list[client.ListedTool], now: datetime
) -> dict[str, int]:
    existing = {
        t.remote_name: t for t in McpTool.objects.for_tenant(tenant).select_for_update().filter(server=server)
    }
    taken = set(McpTool.objects.for_tenant(tenant).exclude(server=server).values_list("name", flat=True))
    counts = {"added": 0, "changed": 0, "unlisted": 0, "unchanged": 0}
    seen: set[str] = set()
    for item in listed[:500]:
        if item.name in seen or not item.name:
            continue
        seen.add(item.name)
        _, problem = tools.closed_schema(item.input_schema)
        if not problem and evaluators.injection_flags(f"{item.description}\n{json.dumps(item.input_schema, default=str)}"):
            # Tool poisoning: the description reaches the model as trusted text, so instructions
            # hidden in it would steer every run. Not offered until the server's text changes.
            problem = "its description reads like instructions to the model (injection evaluator); not offered"
        tool = existing.get(item.name)
        if tool is None:
            tool = McpTool(
                tenant=tenant,
                server=server,
                remote_name=item.name[:200],
                name=tools.registry_name(server.name, item.name, taken),
                side_effect=SideEffect.WRITE,
                first_seen_at=now,
            )
            counts["added"] += 1
        elif (tool.input_schema, tool.description) != (
            item.input_schema,
            item.description[:5000],
        ) or not tool.listed:
            tool.schema_changed_at = now
            counts["changed"] += 1
        else:
            counts["unchanged"] += 1
            continue
        taken.add(tool.name)
        tool.description, tool.input_schema = item.description[:5000], item.input_schema
        tool.server_annotations, tool.listed, tool.updated_at = item.annotations, True, now
        if not problem:
            try:
                tools.build_spec(tool, server)
            except ValueError as exc:
                problem = str(exc)
        tool.problem = problem[:300]
        tool.save()
    gone = [t for name, t in existing.items() if name not in seen and t.listed]
    for tool in gone:
        tool.listed, tool.updated_at = False, now
        tool.save(update_fields=["listed", "updated_at"])
    counts["unlisted"] = len(gone)
    McpServer.objects.for_tenant(tenant).filter(pk=server.pk).update(
        refreshed_at=now, refresh_status=RefreshStatus.OK, refresh_error=""
    )
    audit_record(tenant=tenant, actor=actor, action="mcp_server.refresh", target=server, after=counts)
    return counts


@transaction.atomic
def tool_update(*, tenant: Tenant, actor: Any, tool_id: int, side_effect: str, enabled: bool) -> McpTool:
    tool = McpTool.objects.for_tenant(tenant).select_for_update().filter(pk=tool_id).first()
    if tool is None:
        raise McpTool.DoesNotExist
    if side_effect not in SideEffect.values:
        raise ValidationError("Side effect must be read, write or irreversible.")
    before = {"side_effect": tool.side_effect, "enabled": tool.enabled}
    tool.side_effect, tool.enabled, tool.updated_at = side_effect, enabled, timezone.now()
    tool.save(update_fields=["side_effect", "enabled", "updated_at"])
    audit_record(
        tenant=tenant,
        actor=actor,
        action="mcp_tool.update",
        target=tool,
        before=before,
        after={"side_effect": side_effect, "enabled": enabled},
    )
    return tool


@transaction.atomic
def server_set_enabled(*, tenant: Tenant, actor: Any, server_id: int, enabled: bool) -> McpServer:
    server = McpServer.objects.for_tenant(tenant).select_for_update().filter(pk=server_id).first()
    if server is None:
        raise McpServer.DoesNotExist
    before = server.enabled
    server.enabled = enabled
    server.save(update_fields=["enabled"])
    # The cached specs are keyed by the tool's updated_at: bump it so a switch takes effect now.
    McpTool.objects.for_tenant(tenant).filter(server=server).update(updated_at=timezone.now())
    audit_record(
        tenant=tenant,
        actor=actor,
        action="mcp_server.enable" if enabled else "mcp_server.disable",
        target=server,
        before={"enabled": before},
        after={"enabled": enabled},
    )
    return server
