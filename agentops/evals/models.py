"""Eval suites and their cases, eval runs of one exact prompt version, and one result per case.

A case runs as an ordinary ``Run`` through the harness and the workers, marked as an eval run
(``metadata["eval"]``, which also carries the case's tool fixtures); its ``EvalResult`` links that
run and keeps what the checks said. Cases may be edited after a run: a result keeps the case's name,
critical flag and checks as they were when it ran.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from tenants.models import MONEY, TenantOwned

RATE: dict[str, Any] = {"max_digits": 5, "decimal_places": 4}


class Schedule(models.TextChoices):
    NONE = "", "Not scheduled"
    HOURLY = "hourly", "Every hour"
    DAILY = "daily", "Every day"


SCHEDULE_SECONDS = {Schedule.HOURLY: 3600, Schedule.DAILY: 86_400}


class EvalSuite(TenantOwned):
    prompt = models.ForeignKey("prompts.Prompt", on_delete=models.PROTECT, related_name="eval_suites")
    # Whose tool grants, caps and routing the cases run under.
    agent = models.ForeignKey("runs.Agent", on_delete=models.PROTECT, related_name="eval_suites")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, max_length=2000)
    # Drift: scheduled runs against the prompt's ``production`` label.
    schedule = models.CharField(max_length=10, choices=Schedule.choices, default=Schedule.NONE, blank=True)
    parallelism = models.PositiveIntegerField(default=4, validators=[MinValueValidator(1), MaxValueValidator(64)],
                                              help_text="Cases in flight at once (never above the tenant's concurrent-run limit).")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    last_scheduled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="evalsuite_name_unique_per_tenant")]

    def __str__(self) -> str:
        return self.name


class EvalCase(TenantOwned):
    suite = models.ForeignKey(EvalSuite, on_delete=models.CASCADE, related_name="cases")
    name = models.CharField(max_length=200)
    input = models.TextField(max_length=100_000)
    checks = models.JSONField(default=list, blank=True)
    critical = models.BooleanField(default=False)
    tags = models.JSONField(default=list, blank=True)
    fixtures = models.JSONField(default=list, blank=True)
    # Passed to the case's run (e.g. the scripted scenario in the demo and the tests).
    metadata = models.JSONField(default=dict, blank=True)
    # The run this case was made from ("add this run to a suite").
    source_run_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["suite", "name"]
        constraints = [models.UniqueConstraint(fields=["suite", "name"], name="evalcase_name_unique_per_suite")]

    def __str__(self) -> str:
        return self.name

    def definition(self) -> dict:
        """The case as JSON (the export format, and what the edit form shows)."""
        out = {"name": self.name, "input": self.input, "checks": self.checks, "critical": self.critical, "tags": self.tags,
               "fixtures": self.fixtures}
        if self.metadata:
            out["metadata"] = self.metadata
        return out


class Trigger(models.TextChoices):
    MANUAL = "manual"
    API = "api"
    CLI = "cli"
    SCHEDULE = "schedule"
    GATE = "gate"


class EvalRunStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    CANCELLED = "cancelled"


class EvalRun(TenantOwned):
    suite = models.ForeignKey(EvalSuite, on_delete=models.CASCADE, related_name="eval_runs")
    prompt_version = models.ForeignKey("prompts.PromptVersion", on_delete=models.PROTECT, related_name="eval_runs")
    # The label that resolved to the version, when one did (schedule: production).
    label = models.CharField(max_length=50, blank=True)
    model = models.CharField(max_length=100, blank=True)
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.MANUAL)
    status = models.CharField(max_length=10, choices=EvalRunStatus.choices, default=EvalRunStatus.QUEUED, db_index=True)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    passed = models.PositiveIntegerField(default=0)
    pass_rate = models.DecimalField(**RATE, null=True, blank=True)
    cost = models.DecimalField(**MONEY, default=Decimal(0))
    # Drift: the run this one is compared with, how many points it dropped, and what that raised.
    baseline = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    drop_points = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    regression = models.BooleanField(default=False)
    alerted = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "-created_at"]), models.Index(fields=["suite", "prompt_version", "-created_at"])]

    def __str__(self) -> str:
        return f"eval run {self.pk}"

    @property
    def progress_pct(self) -> int:
        return int(100 * self.done / self.total) if self.total else 0

    @property
    def pass_pct(self) -> Decimal | None:
        return None if self.pass_rate is None else (self.pass_rate * 100).quantize(Decimal("0.1"))


class ResultStatus(models.TextChoices):
    PENDING = "pending"  # not started yet (waiting for a free slot)
    RUNNING = "running"  # its run is queued or running
    SCORED = "scored"


class EvalResult(TenantOwned):
    eval_run = models.ForeignKey(EvalRun, on_delete=models.CASCADE, related_name="results")
    case = models.ForeignKey(EvalCase, null=True, blank=True, on_delete=models.SET_NULL, related_name="results")
    case_name = models.CharField(max_length=200)
    critical = models.BooleanField(default=False)
    checks = models.JSONField(default=list, blank=True)
    run = models.OneToOneField("runs.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="eval_result")
    status = models.CharField(max_length=10, choices=ResultStatus.choices, default=ResultStatus.PENDING)
    passed = models.BooleanField(null=True)
    verdicts = models.JSONField(default=list, blank=True)
    output = models.TextField(blank=True)
    tool_calls = models.JSONField(default=list, blank=True)
    turns = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(**MONEY, default=Decimal(0))
    run_status = models.CharField(max_length=100, blank=True)
    scored_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["eval_run", "case_name"]
        indexes = [models.Index(fields=["eval_run", "status"])]
        constraints = [models.UniqueConstraint(fields=["eval_run", "case_name"], name="evalresult_case_unique_per_run")]

    def __str__(self) -> str:
        return f"{self.case_name} ({self.status})"


class EvalAlert(TenantOwned):
    """A pass-rate drop of a scheduled run against its baseline (in-app; the webhook is sent once)."""
    eval_run = models.OneToOneField(EvalRun, on_delete=models.CASCADE, related_name="alert")
    message = models.CharField(max_length=300)
    created_at = models.DateTimeField(default=timezone.now)
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
