from django.contrib import admin

from agentops.toolbox.models import CustomerAccount, KBArticle, Policy, Refund, SentEmail, Transaction


@admin.register(KBArticle)
class KBArticleAdmin(admin.ModelAdmin):
    list_display = ["slug", "title", "tenant", "updated_at"]
    list_filter = ["tenant"]
    search_fields = ["slug", "title", "body"]


class TransactionInline(admin.TabularInline):
    model = Transaction
    extra = 0
    fields = ["tx_id", "amount", "refunded_amount", "description", "at"]


@admin.register(CustomerAccount)
class CustomerAccountAdmin(admin.ModelAdmin):
    list_display = ["account_id", "name", "plan", "balance", "tenant"]
    list_filter = ["tenant", "plan"]
    search_fields = ["account_id", "name"]
    inlines = [TransactionInline]


@admin.register(Transaction)
class TransactionAdmin(admin.ModelAdmin):
    list_display = ["tx_id", "account", "amount", "refunded_amount", "description", "at", "tenant"]
    list_filter = ["tenant"]
    search_fields = ["tx_id", "account__account_id"]


@admin.register(Policy)
class PolicyAdmin(admin.ModelAdmin):
    list_display = ["name", "tenant"]
    list_filter = ["tenant"]


@admin.register(Refund)
class RefundAdmin(admin.ModelAdmin):
    # Refunds are tool side effects: visible for audit, never edited by hand.
    list_display = ["created_at", "tenant", "account", "transaction", "amount", "run_id", "tool_use_id"]
    list_filter = ["tenant"]
    readonly_fields = [
        "tenant",
        "run_id",
        "tool_use_id",
        "account",
        "transaction",
        "amount",
        "reason",
        "created_at",
    ]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(SentEmail)
class SentEmailAdmin(admin.ModelAdmin):
    list_display = ["created_at", "tenant", "to", "subject", "run_id", "tool_use_id"]
    list_filter = ["tenant"]
    readonly_fields = ["tenant", "run_id", "tool_use_id", "to", "subject", "body", "created_at"]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False
