from importlib import import_module

from django.apps import AppConfig

from agentops.mcp import checks  # noqa: F401 - registers the system checks
from agentops.tools import registry


class McpConfig(AppConfig):
    name = "agentops.mcp"
    label = "mcp"
    verbose_name = "MCP tool servers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Offer each tenant's MCP tools through the registry (which never imports this app)."""
        tools = import_module("agentops.mcp.tools")  # reads the models, which are ready only now
        registry.register_tenant_source(tools.PREFIX, tools.tenant_tools)
