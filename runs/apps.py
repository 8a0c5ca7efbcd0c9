from django.apps import AppConfig

from agentops.harness import evaluators, hooks
from agentops.memory import checks as memory_checks
from agentops.memory import transcripts as memory_transcripts
from budgets import subjects


class RunsConfig(AppConfig):
    name = "runs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Fill the interfaces the floors below own (they never import runs). Imported here, not at
        # the top: these import the models, and an AppConfig module is imported before they are ready.
        from runs import budget_subjects, erasure, services, store

        hooks.register(store=store.RunStore(), runs=services.RunQueue())
        subjects.register(budget_subjects.RunSubjects())
        # A fact is data that will be put in a later run's context: it gets the checks a tool result gets.
        memory_checks.register_checker(lambda text: evaluators.evaluate_tool_result(text).flags)
        store.register_memory_hooks()
        # Erasing a fact or a subject scrubs it from the runs' logs too (memory never imports runs).
        memory_transcripts.register_scrubber(erasure.scrub)
