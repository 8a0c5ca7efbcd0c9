from django.apps import AppConfig

from agentops.harness import prompting


class PromptsConfig(AppConfig):
    name = "prompts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here, not at the top: an AppConfig module is imported before the models are ready.
        from prompts import resolution

        prompting.register_resolver(resolution.VersionResolver())
