"""Prompts, their immutable versions, the labels that point at versions, every label move, and the
per-tenant promotion policy.

A version never changes after it is created: ``PromptVersion.save`` refuses an update, the admin shows
it read-only, and on PostgreSQL a trigger refuses an UPDATE of the row (migration 0002). Its sha256 is
over the canonical content only (not the changelog, author or time), so the same content pushed twice
hashes the same.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

from tenants.models import TenantOwned

# Names travel in URLs (/prompts/<name>/, /labels/<label>): no slashes, spaces or upper case.
NAME_RE = r"^[a-z0-9][a-z0-9_.-]{0,99}$"
LABEL_RE = r"^[a-z0-9][a-z0-9_.-]{0,49}$"
PRODUCTION = "production"
STAGING = "staging"
BUILTIN_LABELS = (PRODUCTION, STAGING)
# The fields whose values make a version what it is; their canonical JSON is what sha256 covers.
CONTENT_FIELDS = ("system", "first_message", "variables", "model", "params", "tools", "validators")


class ImmutableVersion(Exception):
    """A prompt version was asked to change after it was created."""


def canonical_content(content: dict[str, Any]) -> str:
    """One string per content: keys sorted, no whitespace, unicode kept; missing fields as their empty value."""
    empty: dict[str, Any] = {"system": "", "first_message": "", "variables": [], "model": "", "params": {}, "tools": [], "validators": []}
    doc = {k: content.get(k, empty[k]) if content.get(k) is not None else empty[k] for k in CONTENT_FIELDS}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_sha256(content: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_content(content).encode()).hexdigest()


class Prompt(TenantOwned):
    name = models.CharField(max_length=100, validators=[RegexValidator(NAME_RE, "Lower-case letters, digits, '.', '_' and '-' only.")])
    description = models.TextField(blank=True, max_length=2000)
    # Folder-like grouping for the list page, e.g. "support/billing".
    path = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["path", "name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="prompt_name_unique_per_tenant")]

    def __str__(self) -> str:
        return self.name


class PromptVersion(TenantOwned):
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    system = models.TextField()
    # An optional first user message with {{variables}}; ``variables`` declares every one it may use.
    first_message = models.TextField(blank=True)
    variables = models.JSONField(default=list, blank=True)
    model = models.CharField(max_length=100)
    params = models.JSONField(default=dict, blank=True)  # max_tokens, temperature, top_p, stop_sequences
    tools = models.JSONField(default=list, blank=True)
    validators = models.JSONField(default=list, blank=True)
    changelog = models.TextField(blank=True, max_length=5000)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    sha256 = models.CharField(max_length=64)

    class Meta:
        ordering = ["prompt", "-number"]
        constraints = [models.UniqueConstraint(fields=["prompt", "number"], name="promptversion_number_unique")]
        indexes = [models.Index(fields=["prompt", "sha256"])]

    def __str__(self) -> str:
        return f"{self.prompt.name} v{self.number}" if self.prompt_id else f"v{self.number}"

    def content(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in CONTENT_FIELDS}

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ImmutableVersion("A prompt version cannot be changed; create a new version instead.")
        self.sha256 = content_sha256(self.content())
        super().save(*args, **kwargs)

    @property
    def short_sha(self) -> str:
        return self.sha256[:12]


class PromptLabel(TenantOwned):
    """A movable name (``production``, ``staging``, custom) pointing at one version of a prompt."""

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="labels")
    name = models.CharField(max_length=50, validators=[RegexValidator(LABEL_RE, "Lower-case letters, digits, '.', '_' and '-' only.")])
    version = models.ForeignKey(PromptVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="labels")
    moved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["prompt", "name"]
        constraints = [models.UniqueConstraint(fields=["prompt", "name"], name="promptlabel_unique")]

    def __str__(self) -> str:
        return f"{self.prompt.name}@{self.name}" if self.prompt_id else self.name


class LabelMove(TenantOwned):
    """One move of a label, kept forever: the label's history and the audit of every promotion."""

    label = models.ForeignKey(PromptLabel, on_delete=models.CASCADE, related_name="moves")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="label_moves")
    from_version = models.ForeignKey(PromptVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    to_version = models.ForeignKey(PromptVersion, on_delete=models.PROTECT, related_name="+")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_key_id = models.BigIntegerField(null=True, blank=True)
    reason = models.TextField(blank=True, max_length=2000)
    # The eval run whose results let the move through (the evals app's EvalRun id), if the gate applied.
    eval_run_id = models.BigIntegerField(null=True, blank=True)
    override = models.BooleanField(default=False)
    rollback = models.BooleanField(default=False)
    # What the gate saw: pass rates, margin, failing cases — kept as evidence beside the move.
    gate = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["prompt", "-at"])]


class PromptPolicy(TenantOwned):
    """The tenant's promotion rule; admins edit it. Absent means the defaults below."""

    DEFAULT_MARGIN = Decimal("5")
    # Points (percent) of pass rate the candidate may fall below production's latest eval run.
    gate_margin_points = models.DecimalField(max_digits=5, decimal_places=2, default=DEFAULT_MARGIN,
                                             validators=[MinValueValidator(0), MaxValueValidator(100)])
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant"], name="promptpolicy_one_per_tenant")]
