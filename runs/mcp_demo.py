"""Demo step: a real MCP server, registered by Acme, whose two tools an agent calls.

Starts ``agentops/mcp/demo_server.py`` over streamable HTTP on a free loopback port (the demo
command stops it with its other children), lets platform staff allow the same server as a stdio
command, registers it in Acme as ``orders`` (the URL is updated when the demo runs again), sets
``lookup_order`` to ``read`` and leaves ``cancel_order`` a ``write`` whose grant requires approval,
then submits one ``mcp_orders`` run: it looks the order up on the server and stops at the gate, so
the escalation inbox shows an MCP call waiting for an operator.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from typing import Any

from django.conf import settings

from agentops.demo.context import DemoContext
from agentops.mcp import services as mcp_services
from agentops.mcp.models import McpServer, McpTool, StdioCommand
from agentops.tools.errors import ToolError
from runs.demo import submit_traffic, wait_settled
from runs.models import Agent, ToolGrant

TENANT = "acme"
SERVER = "orders"
BATCH = "demo-mcp-v1"
LOOKUP, CANCEL = f"mcp__{SERVER}__lookup_order", f"mcp__{SERVER}__cancel_order"
LOOPBACK = "127.0.0.1/32"


def _free_port(preferred: int = 8765) -> int:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])


def start_server(ctx: DemoContext) -> str:
    """Start the demo MCP server; the demo command stops it (``ctx.processes``). Returns its URL."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentops.mcp.demo_server", "http", "--port", str(port)],
        cwd=settings.BASE_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ctx.processes.append(proc)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the demo MCP server exited at start (code {proc.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.3).close()
            return f"http://127.0.0.1:{port}/mcp"
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the demo MCP server did not listen within 30 s")


def run(ctx: DemoContext) -> None:
    # The demo's server is on the loopback, which the SSRF guard refuses unless exempted; the demo
    # command exempts it for its workers and web server (MCP_UNSAFE_ALLOW_NETWORKS), and here for itself.
    if LOOPBACK not in settings.MCP_UNSAFE_ALLOW_NETWORKS:
        settings.MCP_UNSAFE_ALLOW_NETWORKS = [*settings.MCP_UNSAFE_ALLOW_NETWORKS, LOOPBACK]
    url = start_server(ctx)
    StdioCommand.objects.get_or_create(
        key="demo-orders",
        defaults={
            "label": "Demo orders server (stdio)",
            "command": sys.executable,
            "args": ["-m", "agentops.mcp.demo_server", "stdio"],
        },
    )
    tenant, admin = ctx.tenants[TENANT], ctx.admin(TENANT)
    server = McpServer.objects.for_tenant(tenant).filter(name=SERVER).first()
    if server is None:
        server = mcp_services.server_register(
            tenant=tenant, actor=admin, name=SERVER, transport="http", url=url
        )
    elif server.url != url:
        McpServer.objects.for_tenant(tenant).filter(pk=server.pk).update(url=url)  # a new port this time
        server.refresh_from_db()
    try:
        counts = mcp_services.server_refresh(tenant=tenant, actor=admin, server=server)
    except ToolError as exc:
        ctx.say(f"{TENANT}: MCP server {SERVER} at {url} did not list its tools: {exc.message}")
        return
    lookup = McpTool.objects.for_tenant(tenant).get(server=server, remote_name="lookup_order")
    if lookup.side_effect != "read":
        mcp_services.tool_update(
            tenant=tenant, actor=admin, tool_id=lookup.pk, side_effect="read", enabled=True
        )
    ToolGrant.objects.get_or_create(
        tenant=tenant, tool_name=LOOKUP, agent=None, role="", defaults={"created_by": admin}
    )
    ToolGrant.objects.get_or_create(
        tenant=tenant,
        tool_name=CANCEL,
        agent=None,
        role="",
        defaults={
            "requires_approval": True,
            "created_by": admin,
            "allow": {"values": {"order_id": ["ORD-1001", "ORD-1002", "ORD-1003"]}},
        },
    )
    agent, _ = Agent.objects.get_or_create(
        tenant=tenant,
        name="orders-desk",
        defaults={
            "description": "Demo agent whose tools come from an MCP server",
            "model": "claude-haiku-4-5",
            "system_prompt": "You handle order questions with the order tools. Cancel only what the customer asked for.",
            "tools": [LOOKUP, CANCEL],
        },
    )
    ctx.say(
        f"{TENANT}: MCP server {SERVER} at {url}: tools {counts}; {LOOKUP} is a read, {CANCEL} a write that needs approval"
    )
    operator = ctx.users[TENANT]["operator"]
    traffic: list[tuple[str, str, str]] = [
        ("orders-desk", "mcp_orders", "Customer ACC-1002 wants order ORD-1002 cancelled.")
    ]
    submitted = submit_traffic(tenant, {"orders-desk": agent}, operator, traffic, say=ctx.say, batch=BATCH)
    outcome: Any = wait_settled(tenant, timeout=60, batch=BATCH)
    ctx.say(
        f"{TENANT}: MCP run {'submitted' if submitted else 'already present'}: {dict(outcome)} (the cancel waits in the escalation inbox)"
    )
