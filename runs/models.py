"""Agents, runs and everything a run leaves behind: the message log, tool calls, spans, events,
tool grants and escalations.

The message log is the source of truth for a run's conversation: a worker rebuilds the
``messages`` list from it before every model call, so a crash loses at most the step in flight.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.fields.json import KT
from django.utils import timezone

from agentops.harness import prompting
from agentops.harness.evaluators import all_flags
from agentops.harness.evaluators import policy as flag_policy
from agentops.harness.prompting import ResolvedPrompt

# The statuses belong to the harness's store interface; re-exported here, where the rest of the code looks.
from agentops.harness.store import TERMINAL_STATUSES as TERMINAL_STATUSES
from agentops.harness.store import RunStatus as RunStatus
from agentops.harness.store import ToolCallStatus as ToolCallStatus
from budgets.models import cap_problems
from budgets.pricing import model_matches
from runs import lookups  # noqa: F401 - registers JSONField's has_item lookup
from tenants.models import MONEY, ApiKey, Role, TenantOwned


class Agent(TenantOwned):
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    # The inline text applies while the agent follows no prompt (or its label points nowhere yet).
    # Code reads the prompt only through Agent.resolve_prompt(), which asks the prompts app's resolver.
    system_prompt = models.TextField(max_length=100_000)
    # Followed by label: a run resolves the label once, at its first model call, and keeps that version.
    # A string reference: runs sits below the prompts app and never imports it.
    prompt = models.ForeignKey("prompts.Prompt", null=True, blank=True, on_delete=models.PROTECT, related_name="agents")
    prompt_label = models.CharField(max_length=50, default="production")
    model = models.CharField(max_length=100, default="claude-sonnet-4-6")
    # Routing: {"simple": model, "complex": model}; the run's input picks one (see harness.routing).
    routing = models.JSONField(default=dict, blank=True)
    fallback_model = models.CharField(max_length=100, blank=True, help_text="Used when the primary model is overloaded.")
    max_tokens = models.PositiveIntegerField(default=1024, validators=[MinValueValidator(1), MaxValueValidator(64_000)])
    cache_ttl = models.CharField(
        max_length=2, choices=[("5m", "5 minutes"), ("1h", "1 hour")], default="5m",
        help_text="Prompt cache lifetime: 1 hour costs twice base input per write (5 minutes: 1.25x), reads 0.1x.",
    )
    tools = models.JSONField(default=list, blank=True)
    iteration_cap = models.PositiveIntegerField(default=25, validators=[MinValueValidator(1), MaxValueValidator(500)])
    repetition_threshold = models.PositiveIntegerField(default=3, validators=[MinValueValidator(2), MaxValueValidator(50)])
    wall_clock_limit_s = models.PositiveIntegerField(default=900, validators=[MinValueValidator(5), MaxValueValidator(86_400)])
    task_cost_cap = models.DecimalField(**MONEY, null=True, blank=True, validators=[MinValueValidator(0)])
    # Facts about the run's subject placed in its context at the start (agentops.memory); 0 turns recall off.
    memory_token_budget = models.PositiveIntegerField(default=500, validators=[MaxValueValidator(20_000)])
    runs_disabled = models.BooleanField(default=False, help_text="Kill switch: refuse new runs, pause running ones.")
    # What each online evaluator flag does for this agent: {"flag": "record" | "hold" | "fail" | "review"}
    # (agentops.harness.evaluators.policy; a flag not named takes the default there).
    flag_policy = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="agent_name_unique_per_tenant")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """The task cap is bounded by the tier, and every model the agent may call (primary,
        routed, fallback) must be allowed by it — in forms, services and the Django admin alike."""
        if not self.tenant_id:
            return
        tier = self.tenant.tier
        problems = cap_problems(tier=tier, values={"task_cost_cap": self.task_cost_cap})
        allowed = [m for m in (tier.allowed_models or []) if isinstance(m, str)]
        if allowed:
            routed = [v for k, v in (self.routing or {}).items() if k in ("simple", "complex") and isinstance(v, str)] if isinstance(self.routing, dict) else []
            for field, models_ in (("model", [self.model, *routed]), ("fallback_model", [self.fallback_model])):
                bad = [m for m in models_ if m and not any(model_matches(m, a) for a in allowed)]
                if bad:
                    problems[field] = f"Not allowed on the {tier.name} tier: {', '.join(bad)}"
        try:
            self.flag_policy = flag_policy.clean(self.flag_policy, known=all_flags())
        except ValueError as exc:
            problems["flag_policy"] = str(exc)
        if problems:
            raise ValidationError(problems)

    def resolve_prompt(self, run: Run | None = None) -> ResolvedPrompt:
        """What a run of this agent is told to be: the version the run is pinned to, else the one the
        agent's label points at (pinned on ``run`` now), else the inline text (no version)."""
        resolver = prompting.resolver()
        resolved = resolver.resolve(agent=self, run=run) if resolver is not None else None
        return resolved if resolved is not None else ResolvedPrompt(system=self.system_prompt)


def agent_prompt_model() -> Any:
    """The prompts app's Prompt model, reached through Agent.prompt: runs sits below that app and never imports it."""
    return Agent._meta.get_field("prompt").related_model


class Run(TenantOwned):
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="runs")
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The role whose tool grants apply to this run (the submitter's role, or the key's).
    submitter_role = models.CharField(max_length=20, choices=Role.choices, default=Role.OPERATOR)
    input = models.TextField(max_length=100_000)
    metadata = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True)
    outcome = models.CharField(max_length=64, blank=True, help_text="e.g. end_turn, max_iterations, repetition, tenant_month")
    error_type = models.CharField(max_length=100, blank=True)
    error_message = models.TextField(blank=True)
    result = models.TextField(blank=True)
    model_used = models.CharField(max_length=100, blank=True)
    # The prompt version the run uses, pinned once at its first model call (or at submission for a
    # playground run); a label moved later never changes it. Spend rows copy the id.
    prompt_version_id = models.BigIntegerField(null=True, blank=True)
    prompt_version_number = models.PositiveIntegerField(null=True, blank=True)
    prompt_sha256 = models.CharField(max_length=64, blank=True)
    # Started from a prompt's try-it panel: not a production run (its spend is the prompt version's).
    playground = models.BooleanField(default=False)
    # Lease: only the worker named here may advance the run, until lease_expires_at.
    lease_owner = models.CharField(max_length=100, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempt = models.PositiveIntegerField(default=0)
    iterations = models.PositiveIntegerField(default=0)
    job_id = models.CharField(max_length=64, blank=True)
    # Set when the model API's retries were exhausted: the run waits, then resumes.
    not_before = models.DateTimeField(null=True, blank=True)
    reschedules = models.PositiveIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    pause_requested = models.BooleanField(default=False)
    cost = models.DecimalField(**MONEY, default=0)
    # ``cost`` once the run is finished (succeeded, failed, capped, cancelled), else NULL: what "most
    # expensive runs" walks down (issue 14). Every model call adds to ``cost``; were ``cost`` indexed, each
    # of those updates would be non-HOT and write all of this table's indexes, re-extracting the trigram
    # GINs' entries of ``input`` (+0.3 ms a call at 4 KB of input, +1.5 ms at 20 KB). Kept by a trigger on
    # PostgreSQL (migration 0012): NULL while running, so a call's update leaves it, and every index, alone.
    cost_rank = models.DecimalField(**MONEY, null=True, blank=True, editable=False)
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    trace_id = models.CharField(max_length=32, blank=True)
    # Every online evaluator flag any turn of the run raised (the union of its messages' flags),
    # kept on the run so the list filters and counts by flag without reading the log.
    flags = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "-created_at"]),
            # The run list's filters: each an equality then the list's order, so a page is an index range.
            models.Index(fields=["tenant", "status", "-created_at"], name="runs_run_status_created"),
            models.Index(fields=["tenant", "agent", "-created_at"], name="runs_run_agent_created"),
            models.Index(fields=["tenant", "outcome", "-created_at"], name="runs_run_outcome_created"),
            # The spend page's "most expensive runs": finished runs walked from the dearest down (the date
            # range a filter), merged with the unfinished ones, read by their own small index.
            models.Index(fields=["tenant", "-cost_rank", "-id"], name="runs_run_tenant_cost_rank",
                         condition=Q(cost_rank__isnull=False)),
            models.Index(fields=["tenant", "-created_at"], name="runs_run_unfinished", condition=Q(cost_rank__isnull=True)),
            # No (status, lease_expires_at) index: every step's lease fence moves lease_expires_at, and an
            # indexed column makes each fence a non-HOT update writing all of this table's indexes (issue 14).
            # The reconciler's expired-lease query reads the running runs by ``status`` (few: one per worker).
            # Memory erasure finds a subject's runs (agentops.memory.transcripts, runs.erasure).
            models.Index(F("tenant"), KT("metadata__subject"), name="runs_run_subject"),
            # Text search (icontains is UPPER(col) LIKE '%…%') has trigram GIN indexes on UPPER(input)
            # and UPPER(result), PostgreSQL only: migration 0006 creates them in SQL (Django renders
            # OpClass around an expression inside GinIndex as invalid SQL).
        ]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.status})"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def duration_s(self) -> float | None:
        if not self.started_at:
            return None
        end = self.finished_at or timezone.now()
        return (end - self.started_at).total_seconds()


class Message(TenantOwned):
    """One turn of the durable message log, its content blocks exactly as sent or received."""
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="messages")
    seq = models.PositiveIntegerField()
    role = models.CharField(max_length=10, choices=[("user", "user"), ("assistant", "assistant")])
    content = models.JSONField()
    model = models.CharField(max_length=100, blank=True)
    stop_reason = models.CharField(max_length=32, blank=True)
    response_id = models.CharField(max_length=100, blank=True)
    usage = models.JSONField(null=True, blank=True)
    # Online evaluator flags for this turn, e.g. ["injection"] on a tool_result turn.
    flags = models.JSONField(default=list, blank=True)
    # Each online evaluator's score for this turn (0..1; only the evaluators that scored above 0).
    scores = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["run", "seq"]
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="message_seq_unique")]


class ToolCall(TenantOwned):
    """The audit and idempotency ledger of tool executions, keyed ``(run, tool_use_id)``.

    A retried or resumed run finds a finished row here and reuses its stored result instead
    of executing the tool again.
    """

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="tool_calls")
    tool_use_id = models.CharField(max_length=100)
    tool_name = models.CharField(max_length=200)
    arguments = models.JSONField(default=dict, help_text="Redacted for display.")
    arguments_sha256 = models.CharField(max_length=64, blank=True)
    side_effect = models.CharField(max_length=20, blank=True)
    status = models.CharField(max_length=20, choices=ToolCallStatus.choices, default=ToolCallStatus.STARTED)
    result = models.JSONField(null=True, blank=True, help_text="The tool_result content returned to the model.")
    is_error = models.BooleanField(default=False)
    error_class = models.CharField(max_length=100, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    duration_ms = models.FloatField(null=True, blank=True)
    result_size = models.PositiveIntegerField(null=True, blank=True)
    flags = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["run", "tool_use_id"], name="toolcall_idempotency_key")]
        indexes = [
            # Memory erasure finds the remember calls that named a subject (runs.erasure).
            models.Index(F("tenant"), KT("arguments__subject"), name="runs_toolcall_remember_subject",
                         condition=Q(tool_name="remember")),
        ]


class Span(TenantOwned):
    """A finished trace span, kept for the console's waterfall (also exported over OTLP)."""
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="spans")
    trace_id = models.CharField(max_length=32)
    span_id = models.CharField(max_length=16)
    parent_span_id = models.CharField(max_length=16, blank=True)
    name = models.CharField(max_length=200)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField()
    duration_ms = models.FloatField()
    attributes = models.JSONField(default=dict)
    status = models.CharField(max_length=10, default="ok")

    class Meta:
        ordering = ["run", "started_at", "id"]


class RunEvent(TenantOwned):
    """An append-only event stream per run: the SSE API and the live run page read it."""
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=40)
    data = models.JSONField(default=dict)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["run", "id"]
        indexes = [models.Index(fields=["run", "id"])]


class ToolGrant(TenantOwned):
    """Which agent and role may use a tool, whether each call needs approval, and its allow-lists.

    ``agent`` null means every agent of the tenant; ``role`` blank means every role.
    ``allow`` holds argument allow-lists the tool wrapper enforces, e.g.
    ``{"domains": ["docs.example.com"]}`` or ``{"max_amount": "500.00"}``.
    ``approval_over`` gates calls whose argument crosses a threshold, e.g. ``{"amount": "100.00"}``.
    """

    tool_name = models.CharField(max_length=200)
    agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.CASCADE, related_name="grants")
    role = models.CharField(max_length=20, choices=Role.choices, blank=True)
    requires_approval = models.BooleanField(default=False)
    allow = models.JSONField(default=dict, blank=True)
    approval_over = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["tool_name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "tool_name", "agent", "role"], name="grant_unique", nulls_distinct=False),
        ]

    def __str__(self) -> str:
        who = self.agent.name if self.agent is not None else "all agents"
        return f"{self.tool_name} → {who} / {self.role or 'all roles'}"
