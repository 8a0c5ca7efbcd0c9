from django.apps import AppConfig


class MemoryConfig(AppConfig):
    name = "agentops.memory"
    label = "memory"
    verbose_name = "Memory (facts and failure journal)"
    default_auto_field = "django.db.models.BigAutoField"
