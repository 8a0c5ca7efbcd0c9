from django.apps import AppConfig

from agentops.harness import hooks


class EscalationsConfig(AppConfig):
    name = "agentops.escalations"
    label = "escalations"  # the tables, migrations and URL names keep the app's short name
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here, not at the top: an AppConfig module is imported before the models are ready.
        from agentops.escalations import opening

        hooks.register(escalations=opening.EscalationStore())
