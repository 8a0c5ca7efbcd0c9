from importlib import import_module

from django.apps import AppConfig
from django.conf import settings


class ToolboxConfig(AppConfig):
    name = "agentops.toolbox"
    label = "toolbox"
    verbose_name = "Toolbox (built-in tool data)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register the tools: the registry never imports them back. Every process (web, worker,
        scheduler, tests) loads Django's apps, so every process has the same tools."""
        import_module("agentops.toolbox.builtin")  # registers on import; its models are ready now
        # A deployment's own tools: each module registers its tools with @tool when imported.
        for module in settings.AGENTOPS_TOOL_MODULES:
            import_module(module)
