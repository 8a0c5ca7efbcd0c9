"""Django admin: staff edit prices and caps; the ledger, counters and alerts are read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin

from budgets.models import (
    AgentEstimate,
    CapAlert,
    CapCounter,
    DailyRollup,
    ModelPrice,
    Reservation,
    SpendEntry,
    TenantCaps,
    UserCap,
)
from tenants.services import audit_record


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    list_display = ["model", "display_name", "input", "cache_write_5m", "cache_write_1h", "cache_read", "output", "effective_from", "effective_to"]
    search_fields = ["model", "display_name"]


@admin.register(TenantCaps)
class TenantCapsAdmin(admin.ModelAdmin):
    """Staff set tenant overrides within the tier (model ``clean``; a negotiated plan is its own
    tier); every save is audited."""

    list_display = ["tenant", "task_cost_cap", "user_day_cost_cap", "user_month_cost_cap", "tenant_month_cost_cap", "max_concurrent_runs"]
    fields = ["tenant", "task_cost_cap", "user_day_cost_cap", "user_month_cost_cap", "tenant_month_cost_cap", "max_concurrent_runs", "allowed_models",
              "hot_cap_escrow"]

    def save_model(self, request: Any, obj: TenantCaps, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        audit_record(tenant=obj.tenant, actor=request.user, action="caps.tenant.staff", target=obj,
                     after={f: str(form.cleaned_data.get(f)) for f in form.changed_data})


@admin.register(UserCap)
class UserCapAdmin(admin.ModelAdmin):
    list_display = ["tenant", "user", "user_day_cost_cap", "user_month_cost_cap"]
    raw_id_fields = ["user"]

    def save_model(self, request: Any, obj: UserCap, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        audit_record(tenant=obj.tenant, actor=request.user, action="caps.user.staff", target=obj,
                     after={f: str(form.cleaned_data.get(f)) for f in form.changed_data})


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(SpendEntry)
class SpendEntryAdmin(ReadOnlyAdmin):
    list_display = ["at", "tenant", "model", "run_id", "input_tokens", "output_tokens", "cache_read_tokens", "cost", "is_demo"]
    list_filter = ["model", "is_demo"]
    raw_id_fields = ["user"]


@admin.register(CapCounter)
class CapCounterAdmin(ReadOnlyAdmin):
    list_display = ["tenant", "scope", "subject_id", "window_start", "spent", "reserved", "cap"]
    list_filter = ["scope"]


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "tenant", "run_id", "model", "amount", "status"]
    list_filter = ["status"]


@admin.register(DailyRollup)
class DailyRollupAdmin(ReadOnlyAdmin):
    list_display = ["day", "tenant", "model", "agent_id", "user_id", "calls", "cost"]


@admin.register(CapAlert)
class CapAlertAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "tenant", "kind", "scope", "message"]


@admin.register(AgentEstimate)
class AgentEstimateAdmin(admin.ModelAdmin):
    list_display = ["agent_id", "tenant", "model", "input_tokens", "output_tokens", "tool_calls", "runs_per_day"]
