from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class BudgetsConfig(AppConfig):
    name = "budgets"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Here, not at the top: pricing imports the models, which are not ready when this module loads.
        from budgets.pricing import prices_cache_clear

        post_save.connect(prices_cache_clear, sender="budgets.ModelPrice", dispatch_uid="budgets-prices-save")
        post_delete.connect(prices_cache_clear, sender="budgets.ModelPrice", dispatch_uid="budgets-prices-delete")
