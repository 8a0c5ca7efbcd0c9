from django.contrib import admin

from tenants.models import (
    ApiKey,
    AuditEvent,
    Invitation,
    Membership,
    Tenant,
    Tier,
    WebhookDelivery,
    WebhookEndpoint,
)


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


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    """Tenant admins manage endpoints in the console (where the URL is vetted); staff see and may delete."""

    list_display = ["tenant", "host", "created_at", "created_by", "secret_rotated_at"]
    list_filter = ["tenant"]
    exclude = ["secret"]  # never shown here: it is shown once, to the tenant admin who made or rotated it
    readonly_fields = ["tenant", "url", "created_by", "created_at", "secret_rotated_at"]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "tenant", "event", "host", "status", "attempts", "response_status", "last_error"]
    list_filter = ["status", "event", "tenant"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "tenant", "endpoint", "event", "url", "payload", "status", "attempts", "response_status", "last_error",
        "created_at", "delivered_at",
    ]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False  # a record of what was sent
