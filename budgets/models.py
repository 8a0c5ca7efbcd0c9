"""Budgets: model prices, cap overrides, the spend ledger, cap counters, reservations, rollups,
alerts and per-agent cost estimates.

Money is an exact ``Decimal``. Prices are USD per million tokens with at most 4 decimal places,
so ``tokens × price / 10^6`` always fits the ledger's 10 decimal places: nothing is rounded.

The hot path (reserve / settle / release) lives in :mod:`budgets.services` and talks to
:class:`CapCounter` with single conditional UPDATE statements; see that module for why.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from budgets.subjects import subjects
from tenants.models import MONEY as _TENANT_MONEY
from tenants.models import TenantOwned

# USD per million tokens. Four decimal places keep every cost exact at 10 places.
# Typed as Any so the ** unpacking type-checks against DecimalField's keyword arguments.
MONEY: dict[str, Any] = dict(_TENANT_MONEY)
PRICE: dict[str, Any] = {"max_digits": 12, "decimal_places": 4, "validators": [MinValueValidator(Decimal("0"))]}
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
# The "window" of a per-task counter: a task's cap never resets, so it has one fixed window.
TASK_WINDOW = date(2000, 1, 1)
# Caps above this are refused as absurd (a typo such as 1e9 is not a budget).
CAP_MAX = Decimal("10000000")


CAP_FIELDS = ("task_cost_cap", "user_day_cost_cap", "user_month_cost_cap", "tenant_month_cost_cap")


def cap_problems(*, tier: Any, values: dict[str, Any]) -> dict[str, str]:
    """What is wrong with cap overrides against ``tier``: ``{field: message}``, empty when fine.

    Every cap on every object (tenant overrides, user overrides, an agent's task cap) is bounded
    by the tenant's tier; the policy code also clamps at read time, so an old row cannot exceed it.
    """
    problems: dict[str, str] = {}
    for name, value in values.items():
        if value is None or name not in (*CAP_FIELDS, "max_concurrent_runs", "allowed_models"):
            continue
        if name == "max_concurrent_runs":
            if not (0 < int(value) <= tier.max_concurrent_runs):
                problems[name] = f"Between 1 and the tier's {tier.max_concurrent_runs}."
            continue
        if name == "allowed_models":
            from budgets.pricing import model_matches  # pricing imports these models

            tier_models = list(tier.allowed_models or [])
            bad = [str(m) for m in value if tier_models and not any(model_matches(str(m), t) for t in tier_models)]
            if bad:
                problems[name] = f"Not allowed by your tier: {', '.join(bad)}"
            continue
        if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
            problems[name] = "Must be a non-negative amount."
        elif value > CAP_MAX:
            problems[name] = f"Absurd cap: more than ${CAP_MAX}."
        elif value > Decimal(getattr(tier, name)):
            problems[name] = f"Above your tier's limit of ${Decimal(getattr(tier, name)).normalize():f}."
    return problems


def validate_caps(*, tier: Any, values: dict[str, Any]) -> None:
    """Raise ``ValidationError({field: message})`` when any cap exceeds the tier (see cap_problems)."""
    problems = cap_problems(tier=tier, values=values)
    if problems:
        raise ValidationError(problems)


class CapScope(models.TextChoices):
    TASK = "task", "Per task (run)"
    USER_DAY = "user_day", "Per user per day"
    USER_MONTH = "user_month", "Per user per month"
    TENANT_MONTH = "tenant_month", "Per tenant per month"


# The order counters are locked in, everywhere: a fixed global order means no deadlocks.
SCOPE_ORDER: tuple[str, ...] = (CapScope.TASK, CapScope.USER_DAY, CapScope.USER_MONTH, CapScope.TENANT_MONTH)


class ModelPrice(models.Model):
    """Published price of one model (exact id) or model family, valid from ``effective_from``.

    Lookup: the exact id first, then the family (the id without a ``-YYYYMMDD`` / ``-latest`` /
    ``-0`` suffix). A model with no row is refused before the call — never priced at zero.
    """

    model = models.CharField(max_length=100, help_text="Exact model id (claude-3-haiku-20240307) or family (claude-sonnet-4-5).")
    display_name = models.CharField(max_length=100, blank=True)
    input = models.DecimalField(**PRICE, help_text="Base input, USD / MTok")
    output = models.DecimalField(**PRICE, help_text="Output, USD / MTok")
    cache_write_5m = models.DecimalField(**PRICE, help_text="5-minute cache write, USD / MTok")
    cache_write_1h = models.DecimalField(**PRICE, help_text="1-hour cache write, USD / MTok")
    cache_read = models.DecimalField(**PRICE, help_text="Cache hits & refreshes, USD / MTok")
    effective_from = models.DateTimeField(default=EPOCH)
    effective_to = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=300, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model", "-effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["model", "effective_from"], name="modelprice_unique_from"),
            models.CheckConstraint(
                condition=models.Q(effective_to__isnull=True) | models.Q(effective_to__gt=models.F("effective_from")),
                name="modelprice_window_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model} (${self.input}/${self.output})"

    @property
    def max_input_rate(self) -> Decimal:
        """The most an input token of this model can cost (usually the 1-hour cache write)."""
        return max(self.input, self.cache_write_5m, self.cache_write_1h, self.cache_read)


class TenantCaps(TenantOwned):
    """Per-tenant overrides of the tier's caps. ``None`` means "the tier's value"."""

    task_cost_cap = models.DecimalField(**MONEY, null=True, blank=True)
    user_day_cost_cap = models.DecimalField(**MONEY, null=True, blank=True)
    user_month_cost_cap = models.DecimalField(**MONEY, null=True, blank=True)
    tenant_month_cost_cap = models.DecimalField(**MONEY, null=True, blank=True)
    max_concurrent_runs = models.PositiveIntegerField(null=True, blank=True)
    allowed_models = models.JSONField(null=True, blank=True, help_text="None: the tier's list.")
    # A hot cap: workers check out slices of the shared caps' headroom (budgets.escrow) instead
    # of locking the shared counter rows on every call. Set by platform staff in the admin.
    hot_cap_escrow = models.BooleanField(default=False, db_default=False,
                                         help_text="Workers reserve against escrow slices of this tenant's shared caps (for hundreds of calls a second).")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant"], name="one_caps_row_per_tenant")]
        verbose_name_plural = "tenant caps"

    def __str__(self) -> str:
        return "tenant caps"  # shown in the audit log beside the tenant's own name

    def clean(self) -> None:
        if self.tenant_id:
            validate_caps(tier=self.tenant.tier, values={f: getattr(self, f) for f in (*CAP_FIELDS, "max_concurrent_runs", "allowed_models")})


class UserCap(TenantOwned):
    """A tenant admin's per-user override, never above the tier's limit."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    user_day_cost_cap = models.DecimalField(**MONEY, null=True, blank=True)
    user_month_cost_cap = models.DecimalField(**MONEY, null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="one_usercap_per_user")]

    def __str__(self) -> str:
        return f"caps for {self.user.get_username()}"

    def clean(self) -> None:
        if self.tenant_id:
            validate_caps(tier=self.tenant.tier, values={"user_day_cost_cap": self.user_day_cost_cap, "user_month_cost_cap": self.user_month_cost_cap})


class CapCounter(TenantOwned):
    """Spent and reserved money in one cap window: (scope, subject, window start).

    ``subject_id`` is the run id (task), user id (user_*), or tenant id (tenant_month).
    ``cap`` is the limit last applied, kept for display and alerts.
    """

    scope = models.CharField(max_length=20, choices=CapScope.choices)
    subject_id = models.BigIntegerField()
    window_start = models.DateField()
    spent = models.DecimalField(**MONEY, default=Decimal("0"))
    reserved = models.DecimalField(**MONEY, default=Decimal("0"))
    cap = models.DecimalField(**MONEY, null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "scope", "subject_id", "window_start"], name="capcounter_key"),
            models.CheckConstraint(condition=models.Q(reserved__gte=0), name="capcounter_reserved_nonneg"),
        ]

    def __str__(self) -> str:
        return f"{self.scope}:{self.subject_id}@{self.window_start}"


class EscrowLease(TenantOwned):
    """One worker process's slice of a hot tenant's shared caps (see :mod:`budgets.escrow`).

    ``amount`` is held as reserved on every counter the lease covers: user_day and user_month of
    ``user_id`` (when there is one) and tenant_month, in the windows of ``day``. Calls reserve
    against it locally (their Reservation rows carry the lease id); closing the lease moves what
    they settled into the counters' ``spent`` and frees the rest.
    """

    holder = models.CharField(max_length=100)
    user_id = models.BigIntegerField(null=True, blank=True)
    day = models.DateField()
    amount = models.DecimalField(**MONEY, default=Decimal("0"))
    status = models.CharField(max_length=10, choices=[("open", "open"), ("closed", "closed")], default="open")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    spent = models.DecimalField(**MONEY, null=True, blank=True, help_text="Settled under this lease, moved to the counters at close.")
    # Calls reserve against the slice in the holder's memory, with no row of their own: one call
    # at most is in flight per lease (a holder is one work horse, running one job). A reclaim
    # charges it at its worst case, ``max_call`` (the largest call the lease has let through),
    # to ``run_id`` / ``model`` (the holder's current run and model), as ``reclaim_entry_id``.
    max_call = models.DecimalField(**MONEY, default=Decimal("0"))
    run_id = models.BigIntegerField(null=True, blank=True)
    model = models.CharField(max_length=100, blank=True, default="")
    reclaim_entry_id = models.BigIntegerField(null=True, blank=True)
    late_settled = models.BooleanField(default=False, help_text="The call the reclaim charged settled afterwards (its charge stands).")

    class Meta:
        indexes = [models.Index(fields=["tenant", "expires_at"], name="escrowlease_open_idx", condition=models.Q(status="open"))]

    def __str__(self) -> str:
        return f"escrow lease {self.pk} ${self.amount} ({self.status})"


class ReservationStatus(models.TextChoices):
    OPEN = "open"
    SETTLED = "settled"
    RELEASED = "released"


class Reservation(TenantOwned):
    """Worst-case cost of one model call in flight, held against every applicable cap.

    The counters it holds are derived from its own columns (run, user, day, month), so the row
    is written before any counter is locked.
    """

    # Runs are the runs app's, above budgets: referenced by id (migration 0006 kept the column).
    run_id = models.BigIntegerField()
    user_id = models.BigIntegerField(null=True, blank=True)
    model = models.CharField(max_length=100)
    amount = models.DecimalField(**MONEY)
    day = models.DateField()
    status = models.CharField(max_length=10, choices=ReservationStatus.choices, default=ReservationStatus.OPEN)
    created_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    # Reserved against this EscrowLease's slice rather than the shared counters (budgets.escrow);
    # NULL once the lease closed while the call was still open (it is then a plain reservation).
    escrow_lease_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "created_at"], name="reservation_open_idx", condition=models.Q(status="open")),
            models.Index(fields=["run_id"], name="budgets_res_run_id_4de290_idx"),
            models.Index(fields=["escrow_lease_id"], name="reservation_lease_idx", condition=models.Q(escrow_lease_id__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"reservation {self.pk} ${self.amount} ({self.status})"


class SpendEntry(TenantOwned):
    """One model call's spend. Append-only: corrections are new rows, never edits."""

    run_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    reservation_id = models.BigIntegerField(null=True, blank=True, unique=True)
    response_id = models.CharField(max_length=100, blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    agent_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    prompt_version_id = models.BigIntegerField(null=True, blank=True)
    model = models.CharField(max_length=100)
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    cache_write_5m_tokens = models.PositiveBigIntegerField(default=0)
    cache_write_1h_tokens = models.PositiveBigIntegerField(default=0)
    cache_read_tokens = models.PositiveBigIntegerField(default=0)
    cost = models.DecimalField(**MONEY)
    # The cap window day this call was charged to (the reservation's day).
    day = models.DateField()
    at = models.DateTimeField(default=timezone.now)
    is_demo = models.BooleanField(default=False, help_text="Backfilled demo history, not real traffic.")
    # A call cut off by a crash with no recorded usage: charged at the reservation's worst case
    # (never zero, the API may have answered and billed it) and flagged for finance to check.
    unknown_outcome = models.BooleanField(default=False, db_default=False, help_text="Worst case charged: the call's outcome is unknown.")

    class Meta:
        ordering = ["-at", "-id"]
        # (tenant, day, id): the CSV export reads a tenant's days in (day, id) order down it, with no sort
        # (budgets/export.py); it also serves every (tenant, day) range the (tenant, day) index it replaced did.
        indexes = [models.Index(fields=["tenant", "at"]), models.Index(fields=["tenant", "day", "id"], name="budgets_spend_tenant_day_id")]
        verbose_name_plural = "spend entries"

    def __str__(self) -> str:
        return f"{self.model} ${self.cost}"


class DailyRollup(models.Model):
    """Exact per-day sums of the ledger, incremented in the same transaction as each entry.

    Dimensions are plain integers with 0 for "none" so the unique key (and its upsert) works the
    same on PostgreSQL and SQLite without NULL-distinctness rules.
    """

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    model = models.CharField(max_length=100)
    agent_id = models.BigIntegerField(default=0)
    user_id = models.BigIntegerField(default=0)
    prompt_version_id = models.BigIntegerField(default=0)
    is_demo = models.BooleanField(default=False)
    calls = models.BigIntegerField(default=0)
    cost = models.DecimalField(**MONEY, default=Decimal("0"))
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cache_write_5m_tokens = models.BigIntegerField(default=0)
    cache_write_1h_tokens = models.BigIntegerField(default=0)
    cache_read_tokens = models.BigIntegerField(default=0)
    # Calls settled under an escrow lease add to shard 1-16 (by lease), so a hot tenant's workers
    # do not all increment one row; every other call adds to shard 0. Readers always sum.
    shard = models.SmallIntegerField(default=0, db_default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "day", "model", "agent_id", "user_id", "prompt_version_id", "is_demo", "shard"], name="rollup_key"
            )
        ]
        indexes = [models.Index(fields=["day"])]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.day} {self.model} ${self.cost}"


class AlertKind(models.TextChoices):
    PCT80 = "80", "80% of cap"
    PCT100 = "100", "100% of cap"
    PROJECTION = "projection", "Month-end projection above cap"
    DRIFT = "drift", "Cost per run drifts from estimate"
    # Online evaluators: a flag's rate for an agent doubled week over week (scope = the flag).
    FLAG_RATE = "flag_rate", "Evaluator flag rate doubled"


class CapAlert(TenantOwned):
    """An alert, raised at most once per (kind, scope, subject, window); also the in-app notice."""

    kind = models.CharField(max_length=12, choices=AlertKind.choices)
    scope = models.CharField(max_length=20)
    subject_id = models.BigIntegerField()
    window_start = models.DateField()
    message = models.CharField(max_length=300)
    value = models.DecimalField(**MONEY, null=True, blank=True)
    cap = models.DecimalField(**MONEY, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "kind", "scope", "subject_id", "window_start"], name="alert_once_per_window")
        ]

    def __str__(self) -> str:
        return self.message


class AgentEstimate(TenantOwned):
    """Pre-deploy cost estimate inputs for one agent."""

    agent_id = models.BigIntegerField(unique=True)
    model = models.CharField(max_length=100, blank=True, help_text="Blank: the agent's model.")
    input_tokens = models.PositiveIntegerField(validators=[MaxValueValidator(2_000_000)], help_text="Prompt tokens of the first call")
    output_tokens = models.PositiveIntegerField(validators=[MaxValueValidator(200_000)], help_text="Output tokens per model call")
    tool_calls = models.PositiveIntegerField(default=0, validators=[MaxValueValidator(500)], help_text="Tool calls per run")
    tool_result_tokens = models.PositiveIntegerField(default=0, validators=[MaxValueValidator(1_000_000)], help_text="Tokens per tool result")
    runs_per_day = models.PositiveIntegerField(default=0, validators=[MaxValueValidator(10_000_000)])
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        name = subjects().agent_names(ids={self.agent_id}).get(self.agent_id)
        return f"cost estimate for {name}" if name else "cost estimate for a removed agent"
