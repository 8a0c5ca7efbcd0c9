from django.apps import AppConfig

from agentops.harness import hooks
from budgets import subjects


class RunsConfig(AppConfig):
    name = "runs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Fill the interfaces the floors below own (they never import runs). Imported here, not at
        # the top: these import the models, and an AppConfig module is imported before they are ready.
        from runs import budget_subjects, services, store

        hooks.register(store=store.RunStore(), runs=services.RunQueue())
        subjects.register(budget_subjects.RunSubjects())
        store.register_memory_hooks()
