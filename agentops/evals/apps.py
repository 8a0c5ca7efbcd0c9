from django.apps import AppConfig

from agentops.harness import hooks


class EvalsConfig(AppConfig):
    name = "agentops.evals"
    label = "evals"  # the tables, migrations and URL names keep the app's short name
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here, not at the top: these import the models, and an AppConfig module is
        # imported before they are ready.
        from agentops.evals import selectors, services
        from agentops.prompts.gate import register_eval_source

        hooks.register(run_finished=services.on_run_finished)
        register_eval_source(selectors.EvalResults())
