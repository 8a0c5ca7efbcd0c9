from django.apps import AppConfig

from agentops.harness import prompting
from budgets import subjects


class PromptsConfig(AppConfig):
    name = "prompts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here, not at the top: an AppConfig module is imported before the models are ready.
        from prompts import resolution, selectors

        prompting.register_resolver(resolution.VersionResolver())
        subjects.register_version_names(selectors)
