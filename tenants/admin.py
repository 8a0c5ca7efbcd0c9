from django.contrib import admin

from tenants.models import ApiKey, AuditEvent, Invitation, Membership, Tenant, Tier


@admin.register(Tier)
class TierAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "task_cost_cap", "user_day_cost_cap", "user_month_cost_cap", "tenant_month_cost_cap", "max_concurrent_runs"]


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "tier", "active", "runs_disabled"]
    list_filter = ["tier", "active"]
    search_fields = ["name", "slug"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "tenant", "role"]
    list_filter = ["role", "tenant"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "tenant", "prefix", "scopes", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "hashed"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "tenant", "role", "sent_at", "expires_at", "accepted_at", "revoked_at"]
    list_filter = ["tenant"]
    search_fields = ["email"]
    readonly_fields = ["token_hash", "accepted_by", "accepted_at"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["at", "tenant", "actor", "action", "target_type", "target_id"]
    list_filter = ["action", "tenant"]

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False  # the audit log is append-only
