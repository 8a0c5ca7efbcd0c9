"""Real MCP servers for the tests: the demo server (agentops/mcp/demo_server.py) as a subprocess on a
free loopback port (streamable HTTP), and the same server as a staff-allowed stdio command."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

from agentops.mcp import services
from agentops.mcp.models import McpServer, McpTool, StdioCommand
from runs.models import Agent
from tests.services import free_port, wait_listening


@dataclass
class ServerProcess:
    """The demo MCP server over streamable HTTP; ``stop``/``start`` take it down and bring it back."""

    port: int
    ledger: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agentops.mcp.demo_server",
                "http",
                "--port",
                str(self.port),
                "--ledger",
                str(self.ledger),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_listening(self.port, self.proc, "the demo MCP server", timeout=20)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def cancellations(self) -> list[str]:
        return self.ledger.read_text().splitlines() if self.ledger.exists() else []


@pytest.fixture
def mcp_loopback(settings):  # type: ignore[no-untyped-def]
    settings.MCP_UNSAFE_ALLOW_NETWORKS = ["127.0.0.1/32"]  # the test server only
    settings.MCP_TIMEOUT_S = 10.0


@pytest.fixture
def mcp_server(tmp_path: Path, mcp_loopback: None) -> Iterator[ServerProcess]:
    server = ServerProcess(port=free_port(), ledger=tmp_path / "cancellations.jsonl")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def stdio_command(db) -> StdioCommand:  # type: ignore[no-untyped-def]
    return StdioCommand.objects.create(
        key="demo-orders",
        label="Demo orders (stdio)",
        command=sys.executable,
        args=["-m", "agentops.mcp.demo_server", "stdio"],
    )


def register(tenant, url: str, name: str = "orders") -> McpServer:  # type: ignore[no-untyped-def]
    server = services.server_register(tenant=tenant, actor=None, name=name, transport="http", url=url)
    services.server_refresh(tenant=tenant, actor=None, server=server)
    return server


def tool_named(tenant, server: McpServer, remote: str) -> McpTool:  # type: ignore[no-untyped-def]
    return McpTool.objects.for_tenant(tenant).get(server=server, remote_name=remote)


@pytest.fixture
def orders_agent(tenant) -> Agent:  # type: ignore[no-untyped-def]
    tier = tenant.tier
    tier.task_cost_cap = tier.user_day_cost_cap = tier.user_month_cost_cap = tier.tenant_month_cost_cap = (
        Decimal("1000")
    )
    tier.max_concurrent_runs = 100
    tier.save()
    tenant.gate_irreversible_tools = False
    tenant.save()
    return Agent.objects.create(
        tenant=tenant,
        name="orders",
        system_prompt="You help with orders.",
        model="claude-sonnet-4-6",
        tools=["mcp__orders__lookup_order", "mcp__orders__cancel_order"],
        max_tokens=512,
    )


@pytest.fixture(autouse=True)
def _scripted(settings):  # type: ignore[no-untyped-def]
    settings.ANTHROPIC_API_KEY = ""
    settings.AGENTOPS_SCENARIO = ""
    settings.RUN_LEASE_SECONDS = 5
