from django.apps import AppConfig


class ToolboxConfig(AppConfig):
    name = "agentops.toolbox"
    label = "toolbox"
    verbose_name = "Toolbox (built-in tool data)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the built-in tools once the models they query are importable.
        import agentops.tools.builtin  # noqa: F401
