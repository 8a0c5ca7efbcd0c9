"""Talking to an MCP server through the official ``mcp`` SDK, from sync code (web and RQ workers).

Each call opens a session, does one thing (list the tools, or call one) and closes it, inside a
short-lived event loop with an overall deadline: no loop or connection outlives the call, so a
worker that forks, a server that restarts or a hung stream cannot leak into the next call.

Failures are sorted for the registry's retry rule (agentops.tools.errors):

* connection refused / DNS temporarily failing / stdio process that would not start: the request
  never reached the server → :class:`TransientToolError` with ``not_delivered`` (retried even for a
  tool with side effects);
* timeout, dropped connection, 5xx or 429: → :class:`TransientToolError` (the call may have happened; only
  a ``read`` tool is retried);
* a JSON-RPC error (unknown tool, invalid params) or an SSRF refusal: deterministic
  :class:`ToolError` — calling again fails the same way.

HTTP servers pass the SSRF guard (agentops/netguard.py) at registration and again on every connect;
the connection goes to the vetted address itself (TLS still checks the original host name), so a
second DNS answer (rebinding) is never consulted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import httpx2
import mcp_types
from django.conf import settings
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from agentops import netguard
from agentops.redact import redact
from agentops.tools.errors import ToolError, ToolPermissionError, TransientToolError

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Endpoint:
    """Where a server is, as the client needs it (built from an ``McpServer`` row)."""

    name: str
    transport: str  # "http" | "stdio"
    url: str = ""
    auth_header: str = field(default="", repr=False)
    command: str = ""
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class ListedTool:
    name: str
    description: str
    input_schema: dict[str, Any]
    annotations: dict[str, Any]


@dataclass(frozen=True)
class CallResult:
    text: str
    is_error: bool


def allow_networks() -> tuple[netguard.IPNetwork, ...]:
    """``MCP_UNSAFE_ALLOW_NETWORKS``: networks exempt from the SSRF guard (tests and the local demo)."""
    return netguard.parse_networks(getattr(settings, "MCP_UNSAFE_ALLOW_NETWORKS", []) or [])


def vet_url(url: str) -> netguard.Target:
    """Parse and resolve ``url`` through the SSRF guard; raises :class:`netguard.GuardError`."""
    allow = allow_networks()
    target = netguard.parse_url(url, any_port=True, allow_networks=allow)
    netguard.resolve(target, allow_networks=allow)
    return target


class _PinnedTransport(httpx2.AsyncHTTPTransport):
    """Sends every request to the address vetted at connect time, never to a fresh DNS answer."""

    def __init__(self, host: str, ip: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._host, self._ip = host, ip

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.host != self._host:
            raise httpx2.ConnectError(
                f"refusing a request to another host than {self._host}", request=request
            )
        request.url = request.url.copy_with(host=self._ip)
        request.extensions = {**request.extensions, "sni_hostname": self._host}
        return await super().handle_async_request(request)


def _http_client(
    endpoint: Endpoint, timeout_s: float, overloaded: list[int]
) -> tuple[httpx2.AsyncClient, str]:
    """The pinned client; every 5xx/429 status it receives is appended to ``overloaded`` (the SDK
    reports those as a generic JSON-RPC error, which alone would read as deterministic)."""
    try:
        target = vet_url(endpoint.url)
        ip = netguard.resolve(target, allow_networks=allow_networks())[0]
    except netguard.ResolveFailed as exc:
        raise TransientToolError(f"MCP server {endpoint.name}: {exc}", not_delivered=True)
    except netguard.GuardError as exc:
        raise ToolPermissionError(f"MCP server {endpoint.name} may not be contacted: {exc}")
    headers = {"Authorization": endpoint.auth_header} if endpoint.auth_header else None

    async def note_status(response: httpx2.Response) -> None:
        if response.status_code >= 500 or response.status_code == 429:
            overloaded.append(response.status_code)

    client = httpx2.AsyncClient(
        transport=_PinnedTransport(target.host, ip),
        headers=headers,
        timeout=httpx2.Timeout(timeout_s),
        follow_redirects=False,
        event_hooks={"response": [note_status]},
    )
    return client, endpoint.url


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc]


def _classify(endpoint: Endpoint, exc: BaseException, overloaded: list[int]) -> ToolError:
    """The tool error for a failure of the SDK or the transport (see the module docstring)."""
    leaves = _leaves(exc)
    for leaf in leaves:
        if isinstance(leaf, ToolError):
            return leaf
    if overloaded:
        return TransientToolError(f"MCP server {endpoint.name} answered HTTP {overloaded[-1]}")
    for leaf in leaves:
        if isinstance(leaf, MCPError):
            return ToolError(f"MCP server {endpoint.name} refused the request: {str(leaf)[:300]}")
    for leaf in leaves:
        if isinstance(leaf, FileNotFoundError | PermissionError):
            return TransientToolError(f"MCP server {endpoint.name} could not be started", not_delivered=True)
        if isinstance(leaf, httpx2.ConnectError | ConnectionRefusedError):
            return TransientToolError(
                f"MCP server {endpoint.name} is unreachable (connection refused)", not_delivered=True
            )
    for leaf in leaves:
        if isinstance(leaf, TimeoutError | httpx2.TimeoutException):
            return TransientToolError(f"MCP server {endpoint.name} did not answer in time")
        if isinstance(leaf, httpx2.HTTPStatusError):
            return TransientToolError(f"MCP server {endpoint.name} answered HTTP {leaf.response.status_code}")
    first = leaves[0] if leaves else exc
    logger.warning(
        "MCP server %s failed: %s: %s", endpoint.name, type(first).__name__, redact(str(first))[:300]
    )
    return TransientToolError(f"MCP server {endpoint.name} failed ({type(first).__name__})")


def _run(endpoint: Endpoint, timeout_s: float, work: Callable[[Client], Awaitable[T]]) -> T:
    """Open a session to ``endpoint``, run ``work`` on it, close it; all within ``timeout_s``."""

    overloaded: list[int] = []

    async def main() -> T:
        with anyio.fail_after(timeout_s):
            if endpoint.transport == "stdio":
                params = StdioServerParameters(command=endpoint.command, args=list(endpoint.args))
                # The server's own log lines are not ours to keep: they may carry tenant data.
                with open(os.devnull, "w") as errlog:
                    async with Client(
                        stdio_client(params, errlog=errlog), read_timeout_seconds=timeout_s, cache=None
                    ) as client:
                        return await work(client)
            http, url = _http_client(endpoint, timeout_s, overloaded)
            async with (
                http,
                Client(
                    streamable_http_client(url, http_client=http), read_timeout_seconds=timeout_s, cache=None
                ) as client,
            ):
                return await work(client)

    try:
        return asyncio.run(main())
    except ToolError:
        raise
    except Exception as exc:  # the SDK's and the transport's failures, sorted by _classify
        raise _classify(endpoint, exc, overloaded) from None


async def _list_all(client: Client) -> list[ListedTool]:
    tools: list[ListedTool] = []
    cursor: str | None = None
    for _ in range(50):  # a paginator that never ends cannot hang a refresh
        page = await client.list_tools(cursor=cursor) if cursor else await client.list_tools()
        for t in page.tools:
            annotations = t.annotations.model_dump(exclude_none=True) if t.annotations else {}
            tools.append(
                ListedTool(
                    name=t.name,
                    description=t.description or "",
                    input_schema=dict(t.input_schema or {}),
                    annotations=annotations,
                )
            )
        cursor = page.next_cursor
        if not cursor:
            break
    return tools


def list_tools(endpoint: Endpoint, *, timeout_s: float | None = None) -> list[ListedTool]:
    return _run(endpoint, timeout_s or settings.MCP_TIMEOUT_S, _list_all)


def _result_text(result: mcp_types.CallToolResult) -> str:
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, mcp_types.TextContent):
            parts.append(block.text)
        else:
            parts.append(f"[{block.type} content omitted]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, sort_keys=True, default=str))
    return "\n".join(parts)


def call_tool(
    endpoint: Endpoint, remote_name: str, arguments: dict[str, Any], *, timeout_s: float | None = None
) -> CallResult:
    async def work(client: Client) -> CallResult:
        result = await client.call_tool(remote_name, arguments)
        return CallResult(text=_result_text(result), is_error=bool(result.is_error))

    return _run(endpoint, timeout_s or settings.MCP_TIMEOUT_S, work)


def python_command() -> str:
    """The interpreter running this process (the demo's stdio command uses it)."""
    return sys.executable
