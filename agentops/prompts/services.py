"""Writes: create prompts and versions, move labels through the promotion gate, roll back, edit the policy.

Every function is keyword-only, runs in one transaction and writes an audit row. A version's content
is checked by :func:`version_check` (the live checks of the editor use it too): nothing is saved while
it reports a problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from agentops.harness.prompting import VARIABLE_RE
from agentops.prompts import gate
from agentops.prompts.models import (
    BUILTIN_LABELS,
    CONTENT_FIELDS,
    LABEL_RE,
    NAME_RE,
    LabelMove,
    Prompt,
    PromptLabel,
    PromptPolicy,
    PromptVersion,
)
from agentops.tools import registry
from budgets.pricing import UnknownModelPrice, model_matches, price_for
from runs.models import ToolGrant
from tenants.models import ApiKey, Tenant
from tenants.services import audit_record

PARAM_KEYS = {"max_tokens", "temperature", "top_p", "top_k", "stop_sequences"}


class VersionInvalid(ValueError):
    """``problems``: field -> message, for the form, the API's 400 and `prompts push`."""

    def __init__(self, problems: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))
        self.problems = problems


class PromotionBlocked(Exception):
    def __init__(self, decision: gate.GateDecision):
        super().__init__(decision.message)
        self.decision = decision


@dataclass(frozen=True)
class Checked:
    content: dict[str, Any]
    problems: dict[str, str]
    warnings: dict[str, str]


def max_chars() -> int:
    return int(getattr(settings, "PROMPT_MAX_CHARS", 100_000))


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


def variables_used(*texts: str) -> list[str]:
    seen: dict[str, None] = {}
    for text in texts:
        for name in VARIABLE_RE.findall(text or ""):
            seen.setdefault(name, None)
    return list(seen)


def _check_params(params: Any, problems: dict[str, str]) -> dict[str, Any]:
    if not isinstance(params, dict):
        problems["params"] = "Parameters must be an object."
        return {}
    unknown = sorted(set(params) - PARAM_KEYS)
    if unknown:
        problems["params"] = f"Unknown parameters: {', '.join(map(str, unknown))} (allowed: {', '.join(sorted(PARAM_KEYS))})."
    mt = params.get("max_tokens")
    if mt is not None and (not isinstance(mt, int) or isinstance(mt, bool) or not 1 <= mt <= 64_000):
        problems["params"] = "max_tokens must be a whole number from 1 to 64000."
    for key, top in (("temperature", 1), ("top_p", 1)):
        v = params.get(key)
        if v is not None and (not isinstance(v, int | float) or isinstance(v, bool) or not 0 <= v <= top):
            problems["params"] = f"{key} must be a number from 0 to {top}."
    stops = params.get("stop_sequences")
    if stops is not None and (not isinstance(stops, list) or len(stops) > 8 or not all(isinstance(s, str) and s for s in stops)):
        problems["params"] = "stop_sequences must be a list of up to 8 non-empty strings."
    return params


def version_check(*, tenant: Tenant, data: dict[str, Any]) -> Checked:
    """Everything wrong with a version's content before it is saved, and what is merely suspicious."""
    problems: dict[str, str] = {}
    warnings: dict[str, str] = {}
    unknown = sorted(set(data) - set(CONTENT_FIELDS) - {"changelog"})
    if unknown:
        problems["__all__"] = f"Unknown fields: {', '.join(map(str, unknown))}."
    if _has_nul(data):
        problems["__all__"] = "Text may not contain NUL bytes."
    system, first = data.get("system", ""), data.get("first_message", "") or ""
    if not isinstance(system, str) or not system.strip():
        problems["system"] = "The system prompt is required."
        system = system if isinstance(system, str) else ""
    if not isinstance(first, str):
        problems["first_message"] = "The first message must be text."
        first = ""
    if len(system) + len(first) > max_chars():
        problems["system"] = f"The prompt is {len(system) + len(first):,} characters; the limit is {max_chars():,}."
    declared = data.get("variables") or []
    if not isinstance(declared, list) or not all(isinstance(v, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", v) for v in declared):
        problems["variables"] = "Variables must be a list of names (letters, digits, underscores)."
        declared = []
    used = variables_used(system, first)
    undeclared = [v for v in used if v not in declared]
    if undeclared:
        problems["variables"] = f"Undeclared variables: {', '.join(undeclared)}."
    unused = [v for v in declared if v not in used]
    if unused:
        warnings["variables"] = f"Declared but unused: {', '.join(unused)}."
    model = data.get("model")
    if not isinstance(model, str) or not model:
        problems["model"] = "A model is required."
    else:
        try:
            price_for(model)
        except UnknownModelPrice:
            problems["model"] = f"Unknown model: {model[:100]}."
        allowed = [m for m in (tenant.tier.allowed_models or []) if isinstance(m, str)]
        if "model" not in problems and allowed and not any(model_matches(model, a) for a in allowed):
            problems["model"] = f"{model} is not allowed on the {tenant.tier.name} tier."
    params = _check_params(data.get("params") or {}, problems)
    tools = data.get("tools") or []
    if not isinstance(tools, list) or not all(isinstance(t, str) for t in tools):
        problems["tools"] = "Tools must be a list of tool names."
        tools = []
    else:
        missing = [t for t in tools if registry.get_tool(t, tenant) is None]
        granted = set(ToolGrant.objects.for_tenant(tenant).filter(tool_name__in=tools).values_list("tool_name", flat=True))
        ungranted = [t for t in tools if t not in granted and t not in missing and not getattr(registry.get_tool(t, tenant), "handoff", False)]
        if missing:
            problems["tools"] = f"Unknown tools: {', '.join(t[:100] for t in missing)}."
        elif ungranted:
            problems["tools"] = f"Not granted to this tenant: {', '.join(ungranted)}."
    validators = data.get("validators") or []
    if not isinstance(validators, list) or not all(isinstance(v, dict) for v in validators):
        problems["validators"] = "Validators must be a list of objects."
        validators = []
    content = {"system": system, "first_message": first, "variables": list(declared), "model": model if isinstance(model, str) else "",
               "params": params, "tools": list(dict.fromkeys(tools)), "validators": validators}
    return Checked(content=content, problems=problems, warnings=warnings)


def _check_name(value: Any, pattern: str, what: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(pattern, value):
        raise ValidationError({"name": f"{what} names are lower-case letters, digits, '.', '_' and '-' (no slashes or spaces)."})
    return value


@transaction.atomic
def prompt_create(*, tenant: Tenant, actor: Any, name: str, description: str = "", path: str = "") -> Prompt:
    name = _check_name(name, NAME_RE, "Prompt")
    if _has_nul([description, path]):
        raise ValidationError({"description": "Text may not contain NUL bytes."})
    if Prompt.objects.for_tenant(tenant).filter(name=name).exists():
        raise ValidationError({"name": f"A prompt named {name} exists."})
    prompt = Prompt.objects.create(tenant=tenant, name=name, description=description[:2000], path=path[:200],
                                   created_by=actor if getattr(actor, "is_authenticated", False) else None)
    PromptLabel.objects.bulk_create([PromptLabel(tenant=tenant, prompt=prompt, name=n) for n in BUILTIN_LABELS])
    audit_record(tenant=tenant, actor=actor, action="prompt.create", target=prompt, after={"name": name, "path": path})
    return prompt


@transaction.atomic
def version_create(*, tenant: Tenant, actor: Any, prompt: Prompt, data: dict[str, Any], changelog: str = "",
                   actor_key: ApiKey | None = None) -> PromptVersion:
    """A new immutable version numbered after the last; raises :class:`VersionInvalid` listing the problems."""
    if prompt.tenant_id != tenant.pk:
        raise Prompt.DoesNotExist
    checked = version_check(tenant=tenant, data={k: v for k, v in data.items() if k != "changelog"})
    if not isinstance(changelog, str) or "\x00" in changelog or len(changelog) > 5000:
        checked.problems["changelog"] = "The changelog is text of at most 5000 characters, without NUL bytes."
    if checked.problems:
        raise VersionInvalid(checked.problems)
    # Lock the prompt: concurrent creators number one at a time.
    Prompt.objects.select_for_update().filter(pk=prompt.pk).first()
    last = PromptVersion.objects.for_tenant(tenant).filter(prompt=prompt).aggregate(n=Max("number"))["n"] or 0
    version = PromptVersion(tenant=tenant, prompt=prompt, number=last + 1, changelog=changelog,
                            author=actor if getattr(actor, "is_authenticated", False) else None, **checked.content)
    version.save()
    audit_record(tenant=tenant, actor=actor, actor_key=actor_key, action="prompt.version_create", target=version,
                 after={"number": version.number, "sha256": version.sha256, "model": version.model})
    return version


def _previously_on(label: PromptLabel, version: PromptVersion) -> bool:
    return LabelMove.objects.for_tenant(label.tenant_id).filter(label=label, to_version=version).exists()


@transaction.atomic
def label_move(*, tenant: Tenant, actor: Any, prompt: Prompt, label_name: str, version: PromptVersion, reason: str = "",
               override: bool = False, rollback: bool = False, actor_key: ApiKey | None = None,
               membership: Any = None) -> LabelMove:
    """Point ``label_name`` at ``version`` (creating a custom label on first use).

    ``production`` goes through the gate (:func:`gate.check_promotion`); ``membership`` (or the API key)
    is whose role the gate reads for an override. A rollback — back to a version this label pointed at
    before — skips the gate but needs a reason. Raises :class:`PromotionBlocked` or
    :class:`gate.OverrideForbidden`.
    """
    if prompt.tenant_id != tenant.pk or version.tenant_id != tenant.pk or version.prompt_id != prompt.pk:
        raise PromptVersion.DoesNotExist
    label_name = _check_name(label_name, LABEL_RE, "Label")
    reason = reason if isinstance(reason, str) else ""
    if "\x00" in reason or len(reason) > 2000:
        raise ValidationError({"reason": "The reason is text of at most 2000 characters, without NUL bytes."})
    label, _ = PromptLabel.objects.select_for_update().get_or_create(tenant=tenant, prompt=prompt, name=label_name)
    if label.version_id == version.pk:
        raise ValidationError({"version": f"{label_name} already points at v{version.number}."})
    if rollback:
        if not reason.strip():
            raise ValidationError({"reason": "A rollback needs a reason."})
        if not _previously_on(label, version):
            raise ValidationError({"version": f"{label_name} never pointed at v{version.number}; promote it instead."})
        decision = gate.GateDecision(True, "rollback", f"Rolled back to v{version.number}.")
    else:
        decision = gate.check_promotion(label=label, version=version, actor=membership or actor_key, reason=reason, override=override)
    if not decision.allowed:
        raise PromotionBlocked(decision)
    before = label.version
    now = timezone.now()
    label.version, label.moved_at = version, now
    label.save(update_fields=["version", "moved_at"])
    move = LabelMove.objects.create(
        tenant=tenant, label=label, prompt=prompt, from_version=before, to_version=version,
        actor=actor if getattr(actor, "is_authenticated", False) else None, actor_key_id=actor_key.pk if actor_key else None,
        reason=reason, eval_run_id=decision.evidence.eval_run_id if decision.evidence else None,
        override=decision.override, rollback=rollback, gate=decision.as_json(), at=now,
    )
    audit_record(tenant=tenant, actor=actor, actor_key=actor_key,
                 action="prompt.label_override" if decision.override else ("prompt.label_rollback" if rollback else "prompt.label_move"),
                 target=label, before={"version": before.number if before else None},
                 after={"version": version.number, "reason": reason, "override": decision.override, "gate": decision.code})
    return move


def label_rollback(*, tenant: Tenant, actor: Any, label: PromptLabel, reason: str, membership: Any = None) -> LabelMove:
    """Move ``label`` back to where it pointed before its latest move."""
    last = LabelMove.objects.for_tenant(tenant).filter(label=label).exclude(from_version=None).select_related("from_version").first()
    if last is None or last.from_version is None:
        raise ValidationError({"version": f"{label.name} has nothing to roll back to."})
    return label_move(tenant=tenant, actor=actor, prompt=label.prompt, label_name=label.name, version=last.from_version,
                      reason=reason, rollback=True, membership=membership)


@transaction.atomic
def policy_save(*, tenant: Tenant, actor: Any, gate_margin_points: Decimal) -> PromptPolicy:
    if not isinstance(gate_margin_points, Decimal) or not Decimal(0) <= gate_margin_points <= Decimal(100):
        raise ValidationError({"gate_margin_points": "The margin is a number of points from 0 to 100."})
    policy, _ = PromptPolicy.objects.select_for_update().get_or_create(tenant=tenant)
    before = str(policy.gate_margin_points)
    policy.gate_margin_points, policy.updated_by, policy.updated_at = gate_margin_points, actor, timezone.now()
    policy.save()
    audit_record(tenant=tenant, actor=actor, action="prompt.policy", target=policy, before={"gate_margin_points": before},
                 after={"gate_margin_points": str(gate_margin_points)})
    return policy
