"""Registered MCP servers and the tools they list.

``StdioCommand`` is the platform staff's allow-list: a tenant admin can pick one of these for a
stdio server and can never type a command. ``McpServer`` and ``McpTool`` are tenant-owned. A tool's
``side_effect`` is set by the tenant admin (default ``write``); the server's own annotations are
recorded for reference only and never trusted.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from tenants.models import TenantOwned

SERVER_NAME_RE = r"^[a-z0-9][a-z0-9-]{0,23}$"


class Transport(models.TextChoices):
    HTTP = "http", "Streamable HTTP"
    STDIO = "stdio", "stdio (staff-allowed command)"


class SideEffect(models.TextChoices):
    READ = "read", "read"
    WRITE = "write", "write"
    IRREVERSIBLE = "irreversible", "irreversible"


class RefreshStatus(models.TextChoices):
    NEVER = "never", "never refreshed"
    OK = "ok", "ok"
    FAILED = "failed", "failed"


class StdioCommand(models.Model):
    """A stdio MCP server command platform staff allow (edited in Django admin, listed on /staff/)."""

    key = models.SlugField(max_length=50, unique=True)
    label = models.CharField(max_length=200)
    command = models.CharField(max_length=500, help_text="The executable; looked up on PATH if not absolute.")
    args = models.JSONField(default=list, blank=True, help_text="A JSON list of strings.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class McpServer(TenantOwned):
    name = models.CharField(
        max_length=24,
        validators=[RegexValidator(SERVER_NAME_RE)],
        help_text="Lower-case letters, digits and dashes; part of each tool's name.",
    )
    transport = models.CharField(max_length=10, choices=Transport.choices)
    url = models.CharField(max_length=2048, blank=True)
    stdio_command = models.ForeignKey(
        StdioCommand, null=True, blank=True, on_delete=models.PROTECT, related_name="servers"
    )
    # Sent as the Authorization header; never rendered, logged or put in an audit event.
    auth_header = models.CharField(max_length=2000, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    refreshed_at = models.DateTimeField(null=True, blank=True)
    refresh_status = models.CharField(
        max_length=10, choices=RefreshStatus.choices, default=RefreshStatus.NEVER
    )
    refresh_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="mcp_server_name_unique_per_tenant")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def target(self) -> str:
        """What the console shows for where the server is (never the auth header)."""
        if self.transport == Transport.STDIO:
            return f"stdio: {self.stdio_command.key if self.stdio_command else '?'}"
        return self.url


class McpTool(TenantOwned):
    server = models.ForeignKey(McpServer, on_delete=models.CASCADE, related_name="tools")
    # The name the server lists (called with), and the registry name the model sees.
    remote_name = models.CharField(max_length=200)
    name = models.CharField(max_length=64)
    description = models.TextField(max_length=5000, blank=True)
    input_schema = models.JSONField(default=dict)
    # What the server said about itself (annotations): shown, never used for gating.
    server_annotations = models.JSONField(default=dict, blank=True)
    side_effect = models.CharField(max_length=20, choices=SideEffect.choices, default=SideEffect.WRITE)
    enabled = models.BooleanField(default=True)
    # False when the last refresh no longer listed it: disabled, never deleted (grants stay coherent).
    listed = models.BooleanField(default=True)
    # Why the tool cannot be offered (e.g. a schema the registry refuses); blank when it can.
    problem = models.CharField(max_length=300, blank=True)
    first_seen_at = models.DateTimeField(default=timezone.now)
    schema_changed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["server", "remote_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["server", "remote_name"], name="mcp_tool_remote_unique_per_server"
            ),
            models.UniqueConstraint(fields=["tenant", "name"], name="mcp_tool_name_unique_per_tenant"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def offered(self) -> bool:
        return self.enabled and self.listed and not self.problem and self.server.enabled
