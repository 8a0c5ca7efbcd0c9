from django.apps import AppConfig

from agentops.harness import hooks


class EvalsConfig(AppConfig):
    name = "evals"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here, not at the top: these import the models, and an AppConfig module is
        # imported before they are ready.
        from evals import selectors, services
        from prompts.gate import register_eval_source

        hooks.register(run_finished=services.on_run_finished)
        register_eval_source(selectors.EvalResults())
