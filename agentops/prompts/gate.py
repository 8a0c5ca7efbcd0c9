"""The promotion gate: may ``label`` move to ``version``?

Only ``production`` is gated. It needs a finished eval run of that exact version on the prompt's suite,
a pass rate no more than the tenant's margin (default 5 points) below the current production version's
latest run, and no critical case failing. The evals app supplies the results through an
:class:`EvalResultsSource` it registers in its ``AppConfig.ready()``; with none registered, moving
production is refused ("no eval results") unless an admin overrides with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from django.apps import apps

# tenants.models.Role.ADMIN; a string so this module imports no models (see gate_margin).
ADMIN = "admin"

if TYPE_CHECKING:
    from agentops.prompts.models import PromptLabel, PromptVersion


@dataclass(frozen=True)
class EvalEvidence:
    eval_run_id: int
    finished: bool
    pass_rate: Decimal  # 0..1
    failing_cases: tuple[str, ...]
    failing_critical: tuple[str, ...]


class EvalResultsSource(Protocol):
    def latest_for(self, version: PromptVersion) -> EvalEvidence | None:
        """The latest finished eval run of that exact version on the prompt's suite."""
        ...


class OverrideForbidden(Exception):
    """Only an admin may override the gate (the views answer 403)."""


@dataclass(frozen=True)
class GateDecision:
    allowed: bool
    code: str  # ok | ungated | no_eval_results | eval_unfinished | critical_failing | regression | override_needs_reason
    message: str
    failing_cases: tuple[str, ...] = ()
    failing_critical: tuple[str, ...] = ()
    evidence: EvalEvidence | None = None
    baseline: EvalEvidence | None = None
    margin_points: Decimal | None = None
    override: bool = False
    refused_code: str = ""  # with an override: what the gate said before it was overridden
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """For LabelMove.gate and the API's 409 body."""
        def ev(e: EvalEvidence | None) -> dict[str, Any] | None:
            return None if e is None else {"eval_run_id": e.eval_run_id, "finished": e.finished, "pass_rate": str(e.pass_rate),
                                           "failing_cases": list(e.failing_cases), "failing_critical": list(e.failing_critical)}
        return {"allowed": self.allowed, "code": self.code, "message": self.message, "failing_cases": list(self.failing_cases),
                "failing_critical": list(self.failing_critical), "evidence": ev(self.evidence), "baseline": ev(self.baseline),
                "margin_points": None if self.margin_points is None else str(self.margin_points),
                "override": self.override, "refused_code": self.refused_code}


_source: list[EvalResultsSource] = []


def register_eval_source(source: EvalResultsSource | None) -> None:
    """Called from the evals app's ``AppConfig.ready()`` (tests register a double; None unregisters)."""
    _source.clear()
    if source is not None:
        _source.append(source)


def eval_source() -> EvalResultsSource | None:
    return _source[0] if _source else None


def actor_role(actor: Any) -> str:
    """A Membership's role, or the role an API key acts as."""
    return str(getattr(actor, "role", "") or getattr(actor, "acts_as_role", "") or "")


def gate_margin(*, tenant_id: int) -> Decimal:
    """The tenant's margin in points (its PromptPolicy, else the default). The model is looked up by
    name so this module imports no models: the evals app imports it from its AppConfig."""
    policy = apps.get_model("prompts", "PromptPolicy")
    value = policy.objects.for_tenant(tenant_id).values_list("gate_margin_points", flat=True).first()
    return Decimal(value) if value is not None else policy.DEFAULT_MARGIN


def _pct(rate: Decimal) -> Decimal:
    return (Decimal(rate) * 100).quantize(Decimal("0.01"))


def _evaluate(*, label: PromptLabel, version: PromptVersion, margin: Decimal) -> GateDecision:
    source = eval_source()
    evidence = source.latest_for(version) if source else None
    if evidence is None:
        return GateDecision(False, "no_eval_results", f"No eval results for v{version.number}: run its eval suite before promoting it to production.",
                            margin_points=margin)
    if not evidence.finished:
        return GateDecision(False, "eval_unfinished", f"Eval run {evidence.eval_run_id} of v{version.number} has not finished.",
                            evidence=evidence, margin_points=margin)
    if evidence.failing_critical:
        return GateDecision(False, "critical_failing", f"Critical cases fail on v{version.number}: {', '.join(evidence.failing_critical)}.",
                            failing_cases=evidence.failing_cases, failing_critical=evidence.failing_critical,
                            evidence=evidence, margin_points=margin)
    current = label.version
    baseline = source.latest_for(current) if source and current is not None and current.pk != version.pk else None
    if baseline is not None and baseline.finished and _pct(evidence.pass_rate) < _pct(baseline.pass_rate) - margin:
        return GateDecision(False, "regression",
                            f"v{version.number} passes {_pct(evidence.pass_rate)}% of cases, more than {margin} points below "
                            f"production v{current.number if current else '?'} ({_pct(baseline.pass_rate)}%).",
                            failing_cases=evidence.failing_cases, evidence=evidence, baseline=baseline, margin_points=margin)
    return GateDecision(True, "ok", f"v{version.number} passes {_pct(evidence.pass_rate)}% of its eval cases.",
                        failing_cases=evidence.failing_cases, evidence=evidence, baseline=baseline, margin_points=margin)


def check_promotion(*, label: PromptLabel, version: PromptVersion, actor: Any, reason: str, override: bool,
                    margin: Decimal | None = None) -> GateDecision:
    """Whether ``label`` may move to ``version`` (refused or allowed, with the failing cases).

    ``actor`` is the Membership (or API key) moving it; an override by anyone but an admin raises
    :class:`OverrideForbidden`. ``margin`` defaults to the tenant's policy.
    """
    if label.name != "production":
        return GateDecision(True, "ungated", f"'{label.name}' moves without a gate.")
    if override and actor_role(actor) != ADMIN:
        raise OverrideForbidden("Only an admin may override the promotion gate.")
    if margin is None:
        margin = gate_margin(tenant_id=label.tenant_id)
    decision = _evaluate(label=label, version=version, margin=margin)
    if decision.allowed or not override:
        return decision
    if not (reason or "").strip():
        return GateDecision(False, "override_needs_reason", "An override needs a written reason.", failing_cases=decision.failing_cases,
                            failing_critical=decision.failing_critical, evidence=decision.evidence, baseline=decision.baseline,
                            margin_points=margin)
    return GateDecision(True, "ok", f"Overridden by an admin: {decision.message}", failing_cases=decision.failing_cases,
                        failing_critical=decision.failing_critical, evidence=decision.evidence, baseline=decision.baseline,
                        margin_points=margin, override=True, refused_code=decision.code)
