from django.apps import AppConfig


class BudgetsConfig(AppConfig):
    name = "budgets"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from budgets.models import ModelPrice
        from budgets.pricing import prices_cache_clear

        post_save.connect(prices_cache_clear, sender=ModelPrice, dispatch_uid="budgets-prices-save")
        post_delete.connect(prices_cache_clear, sender=ModelPrice, dispatch_uid="budgets-prices-delete")
