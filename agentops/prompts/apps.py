from django.apps import AppConfig

from agentops.harness import prompting
from budgets import subjects


class PromptsConfig(AppConfig):
    name = "agentops.prompts"
    label = "prompts"  # the tables, migrations and URL names keep the app's short name
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here, not at the top: an AppConfig module is imported before the models are ready.
        from agentops.prompts import resolution, selectors

        prompting.register_resolver(resolution.VersionResolver())
        subjects.register_version_names(selectors)
