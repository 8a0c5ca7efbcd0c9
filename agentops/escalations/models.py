"""Escalations: a pending human decision on a run (a gated tool call, a hand-off, an unknown outcome).

The table is still ``runs_escalation``: the model moved here from ``runs`` with a state-only migration.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from runs.models import Run, ToolGrant
from tenants.models import ApiKey, TenantOwned


class EscalationStatus(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class Escalation(TenantOwned):
    """A pending human decision on a run: a gated tool call, the agent's own hand-off request, or a
    tool call whose outcome is unknown (a crash between start and finish of a tool that is not
    idempotent: retry it, mark it done with a result, or fail the run)."""

    KIND_TOOL = "tool_call"
    KIND_HANDOFF = "handoff"
    KIND_OUTCOME_UNKNOWN = "outcome_unknown"
    # A finished run an online evaluator flagged, under a "review" policy: a human reads it.
    KIND_REVIEW = "review"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="escalations")
    kind = models.CharField(max_length=20, choices=[(KIND_TOOL, "Gated tool call"), (KIND_HANDOFF, "Agent hand-off"),
                                                    (KIND_OUTCOME_UNKNOWN, "Tool call with unknown outcome"),
                                                    (KIND_REVIEW, "Run flagged for review")])
    tool_use_id = models.CharField(max_length=100)
    tool_name = models.CharField(max_length=200)
    arguments = models.JSONField(default=dict)
    arguments_sha256 = models.CharField(max_length=64)
    grant = models.ForeignKey(ToolGrant, null=True, blank=True, on_delete=models.SET_NULL, related_name="escalations")
    gate_reason = models.CharField(max_length=300)
    reason = models.TextField(blank=True, help_text="The agent's own words, for a hand-off.")
    context_summary = models.TextField(blank=True)
    urgency = models.CharField(max_length=10, choices=[("low", "low"), ("normal", "normal"), ("high", "high")], default="normal")
    requested_at = models.DateTimeField(default=timezone.now)
    sla_due_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    status = models.CharField(max_length=20, choices=EscalationStatus.choices, default=EscalationStatus.PENDING, db_index=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_by_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    comment = models.TextField(blank=True, max_length=5000)
    # The decision as given (approve, reject, retry, mark_done, fail); ``status`` is its effect.
    decision = models.CharField(max_length=20, blank=True, db_default="")
    # mark_done: the result the operator vouches for; the model receives it as the tool_result.
    resolution = models.TextField(blank=True, max_length=16000, db_default="")

    class Meta:
        db_table = "runs_escalation"
        ordering = ["-requested_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "status", "-requested_at"]),
            # The inbox: pending, by urgency, oldest first — each urgency an index range (selectors.pending_top).
            models.Index(fields=["tenant", "status", "urgency", "requested_at", "id"], name="runs_esc_pending_urgency"),
            # History: the newest decisions first, a page an index range (keyset on decided_at, id).
            models.Index(fields=["tenant", "-decided_at", "-id"], name="runs_esc_decided"),
        ]
        # A gated call that was approved and then cut off by a crash gets a second, outcome_unknown one.
        constraints = [models.UniqueConstraint(fields=["run", "tool_use_id", "kind"], name="one_escalation_per_tool_use_kind")]

    def __str__(self) -> str:
        return f"escalation {self.pk} {self.tool_name} ({self.status})"
