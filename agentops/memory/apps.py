from importlib import import_module

from django.apps import AppConfig


class MemoryConfig(AppConfig):
    name = "agentops.memory"
    label = "memory"
    verbose_name = "Memory (facts and failure journal)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the ``remember`` tool on import (its module imports the models, ready now).
        import_module("agentops.memory.tools")
