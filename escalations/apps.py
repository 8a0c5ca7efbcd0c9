from django.apps import AppConfig

from agentops.harness import hooks


class EscalationsConfig(AppConfig):
    name = "escalations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here, not at the top: an AppConfig module is imported before the models are ready.
        from escalations import opening

        hooks.register(escalations=opening.EscalationStore())
