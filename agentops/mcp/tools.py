"""A tenant's MCP tools as registry tools (:class:`agentops.tools.registry.ToolSpec`).

Registered with the registry as a tenant source (apps.py): ``registry.get_tool(name, tenant)`` and
``registry.all_tools(tenant)`` find them; without a tenant, or for another tenant, they do not exist.
Everything after that — grants, allow-lists, gating, the idempotency ledger, output truncation, the
online evaluators — is the harness's one code path for every tool.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Callable
from typing import Any

from agentops.mcp import client
from agentops.mcp.models import McpServer, McpTool, Transport
from agentops.tools.errors import ToolError, ToolNotFoundError
from agentops.tools.registry import ToolContext, ToolSpec

PREFIX = "mcp__"
DESCRIPTION_LIMIT = 1024
_SPECS: dict[tuple[int, Any], ToolSpec] = {}
_SPEC_CACHE_LIMIT = 5000


def registry_name(server_name: str, remote_name: str, taken: set[str] = frozenset()) -> str:  # type: ignore[assignment]
    """``mcp__<server>__<tool>``: a valid Anthropic tool name that no built-in and no other server uses.

    Characters a tool name may not carry become ``_``; a name too long or already taken keeps a
    short hash of the server's own name, so two different remote names never map to one name."""
    server = server_name.replace("-", "_")
    tool = re.sub(r"[^a-zA-Z0-9_-]", "_", remote_name) or "tool"
    name = f"{PREFIX}{server}__{tool}"
    if len(name) > 64 or name in taken:
        digest = hashlib.sha256(remote_name.encode()).hexdigest()[:8]
        name = f"{PREFIX}{server}__{tool[: 64 - len(PREFIX) - len(server) - 11]}_{digest}"
    return name


def closed_schema(schema: object) -> tuple[dict[str, Any], str]:
    """The schema the model is offered and arguments are checked against, and a problem (or "").

    The listed schema is kept as listed (``McpTool.input_schema``); here an object schema that
    does not say ``additionalProperties`` gets ``false``: the model may send only what the server
    declared. A schema that is not an object cannot be offered as a tool."""
    if not isinstance(schema, dict):
        return {}, "the server listed no input schema object"
    closed = copy.deepcopy(schema)
    closed.pop("$schema", None)
    if closed.get("type", "object") != "object":
        return {}, f"the input schema's type is {str(closed.get('type'))[:40]!r}, not an object"
    closed["type"] = "object"
    closed.setdefault("properties", {})
    if closed.get("additionalProperties") is not False:
        closed["additionalProperties"] = False
    return closed, ""


def numeric_arguments(schema: dict[str, Any]) -> tuple[str, ...]:
    """Arguments a grant's ``approval_over`` may gate on: the top-level number/integer properties."""
    props = schema.get("properties", {})
    return tuple(
        sorted(k for k, v in props.items() if isinstance(v, dict) and v.get("type") in ("number", "integer"))
    )


def build_spec(tool: McpTool, server: McpServer) -> ToolSpec:
    """Raises ValueError when the registry refuses the schema (recorded as the tool's problem)."""
    schema, problem = closed_schema(tool.input_schema)
    if problem:
        raise ValueError(problem)
    description = (tool.description or f"{tool.remote_name} on MCP server {server.name}").strip()
    return ToolSpec(
        name=tool.name,
        description=f"[MCP server {server.name}] {description}"[:DESCRIPTION_LIMIT],
        input_schema=schema,
        side_effect=tool.side_effect,  # type: ignore[arg-type]
        # Only a read may be repeated on a timeout; a refused connection is retried for any tool.
        idempotent=tool.side_effect == "read",
        func=_caller(tool.pk),
        allow_keys=("values",),
        threshold_args=numeric_arguments(schema),
    )


def endpoint(server: McpServer) -> client.Endpoint:
    if server.transport == Transport.STDIO:
        command = server.stdio_command
        if command is None or not command.enabled:
            raise ToolError(
                f"MCP server {server.name}: its stdio command is no longer allowed by the platform"
            )
        return client.Endpoint(
            name=server.name,
            transport="stdio",
            command=command.command,
            args=tuple(str(a) for a in (command.args or [])),
        )
    return client.Endpoint(name=server.name, transport="http", url=server.url, auth_header=server.auth_header)


def _caller(tool_pk: int) -> Callable[..., Any]:
    def call(ctx: ToolContext, **arguments: Any) -> str:
        # Read again at call time, scoped to the run's tenant: a tool disabled (or a server
        # switched off) since the run's tool set was read is not called.
        tool = (
            McpTool.objects.for_tenant(ctx.tenant_id)
            .select_related("server", "server__stdio_command")
            .filter(pk=tool_pk)
            .first()
        )
        if tool is None or not tool.offered:
            raise ToolNotFoundError("this MCP tool is no longer available")
        result = client.call_tool(endpoint(tool.server), tool.remote_name, arguments)
        if result.is_error:
            # The server's own error for the model; deterministic: the same call fails the same way.
            raise ToolError(f"{tool.name} returned an error: {result.text[:2000]}")
        return result.text

    return call


def tenant_tools(tenant_id: int) -> dict[str, ToolSpec]:
    """The tenant's offerable MCP tools by registry name (the registry's tenant source)."""
    rows = (
        McpTool.objects.for_tenant(tenant_id)
        .filter(enabled=True, listed=True, problem="", server__enabled=True)
        .select_related("server")
    )
    specs: dict[str, ToolSpec] = {}
    for tool in rows:
        key = (tool.pk, tool.updated_at)
        spec = _SPECS.get(key)
        if spec is None:
            try:
                spec = build_spec(tool, tool.server)
            except ValueError:
                continue  # refresh records the problem; never offer what the registry refuses
            if len(_SPECS) > _SPEC_CACHE_LIMIT:
                _SPECS.clear()
            _SPECS[key] = spec
        specs[tool.name] = spec
    return specs
