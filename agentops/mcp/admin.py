from django.contrib import admin

from agentops.mcp.models import StdioCommand


@admin.register(StdioCommand)
class StdioCommandAdmin(admin.ModelAdmin):
    """Platform staff's allow-list of stdio MCP server commands (tenant admins choose from it)."""

    list_display = ("key", "label", "command", "args", "enabled")
    list_filter = ("enabled",)
    search_fields = ("key", "label", "command")
