"""Facts and failure-journal entries; every row belongs to a tenant.

Runs and agents are referred to by plain id (as budgets does): this app sits below ``runs``.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from tenants.models import TenantOwned


class Fact(TenantOwned):
    """One thing worth remembering about a subject, written by the ``remember`` tool or extracted
    from turns the harness trims from a run's context."""

    class Source(models.TextChoices):
        TOOL = "tool", "remember tool"
        EXTRACTION = "extraction", "extracted on trim"
        OPERATOR = "operator", "added by an operator"

    subject = models.CharField(max_length=200)
    text = models.TextField(max_length=2000)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.TOOL)
    source_run_id = models.BigIntegerField(null=True, blank=True)
    source_seq = models.IntegerField(null=True, blank=True)  # the turn (message seq) it came from
    agent_id = models.BigIntegerField(null=True, blank=True)  # the author agent
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    # Online evaluators' verdicts when the fact was written; a flagged fact is kept for review
    # but never recalled.
    flags = models.JSONField(default=list, blank=True)
    flagged = models.BooleanField(default=False)  # flags != []: kept apart so recall filters on a column
    # SHA-256 of the (redacted) text: the same fact written twice for a subject is one row.
    text_sha256 = models.CharField(max_length=64, default="")
    # PostgreSQL only (migration 0002_facts_search): a stored ``search`` tsvector column generated from
    # the text, with a GIN index; recall and the Memory page's text search read it in SQL.

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "subject", "-created_at"], name="memory_fact_subject"),
            models.Index(fields=["tenant", "-created_at", "-id"], name="memory_fact_created"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "subject", "text_sha256"], name="memory_fact_unique_text"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subject}: {self.text[:60]}"


class FailureEntry(TenantOwned):
    """A failure an agent met with a tool: a deterministic tool error, a refused call, a validation
    failure or a breaker trip. Read at the agent's next runs as a "known failures" note."""

    class Kind(models.TextChoices):
        TOOL_ERROR = "tool_error", "tool error"
        REFUSED = "refused", "refused call"
        VALIDATION = "validation", "validation failure"
        BREAKER = "breaker", "breaker trip"

    agent_id = models.BigIntegerField()
    tool = models.CharField(max_length=200)
    # Canonical argument pattern: the arguments' JSON with volatile values generalised.
    pattern = models.TextField(max_length=4000)
    # sha256 of ``pattern``: the upsert key (a btree cannot index long text), set by the journal's SQL.
    pattern_sha256 = models.CharField(max_length=64, default="")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    error_type = models.CharField(max_length=100)
    message = models.TextField(max_length=2000)
    subject = models.CharField(max_length=200, blank=True)
    run_id = models.BigIntegerField(null=True, blank=True)
    occurrences = models.IntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    cleared_at = models.DateTimeField(null=True, blank=True)
    cleared_by = models.CharField(max_length=150, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "agent_id", "tool"], name="memory_failure_agent_tool"),
        ]
        constraints = [
            # One entry per failure shape: a repeat adds to ``occurrences`` (agentops.memory.journal.record).
            models.UniqueConstraint(
                fields=["tenant", "agent_id", "tool", "pattern_sha256", "error_type", "subject"],
                name="memory_failure_unique_shape",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tool} {self.error_type}"
