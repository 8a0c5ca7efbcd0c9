"""Django admin: escalations are read-only here; decisions go through the inbox or the API
(they are audited, notify, and resume the run)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin

from agentops.escalations.models import Escalation


@admin.register(Escalation)
class EscalationAdmin(admin.ModelAdmin):
    list_display = ["id", "tenant", "run", "kind", "tool_name", "status", "urgency", "requested_at", "decided_at"]
    list_filter = ["status", "kind", "urgency"]
    search_fields = ["tool_name", "tool_use_id"]
    raw_id_fields = ["run", "grant", "decided_by", "decided_by_key"]

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False
