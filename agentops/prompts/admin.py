from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from agentops.prompts.models import LabelMove, Prompt, PromptLabel, PromptPolicy, PromptVersion


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ("name", "tenant", "path", "created_at")
    list_filter = ("tenant",)
    search_fields = ("name", "description")


@admin.register(PromptVersion)
class PromptVersionAdmin(admin.ModelAdmin):
    """Read-only: a version is immutable (create new ones in the console, the API or `prompts push`)."""

    list_display = ("prompt", "number", "model", "sha256", "author", "created_at")
    list_filter = ("tenant",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PromptLabel)
class PromptLabelAdmin(admin.ModelAdmin):
    """Labels move only through the gate (console, API); the admin shows where they point."""

    list_display = ("prompt", "name", "version", "moved_at")
    list_filter = ("tenant", "name")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(LabelMove)
class LabelMoveAdmin(admin.ModelAdmin):
    list_display = ("prompt", "label", "from_version", "to_version", "actor", "override", "rollback", "at")
    list_filter = ("tenant", "override", "rollback")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PromptPolicy)
class PromptPolicyAdmin(admin.ModelAdmin):
    list_display = ("tenant", "gate_margin_points", "updated_at")
