"""Reads for evals: suites, eval runs, results, comparisons, pass rate over time, and the
eval results the prompts gate reads (:class:`EvalResults`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet, Sum

from agentops.evals.models import EvalAlert, EvalCase, EvalResult, EvalRun, EvalRunStatus, EvalSuite
from agentops.prompts.gate import EvalEvidence
from agentops.prompts.models import PromptVersion
from tenants.access import parse_id
from tenants.models import Tenant


def suites(*, tenant: Tenant) -> QuerySet[EvalSuite]:
    return EvalSuite.objects.for_tenant(tenant).select_related("prompt", "agent")


def suite_get(*, tenant: Tenant, suite_id: object) -> EvalSuite:
    pk = parse_id(suite_id)
    if pk is None:
        raise EvalSuite.DoesNotExist
    return suites(tenant=tenant).get(pk=pk)


def case_get(*, tenant: Tenant, case_id: object) -> EvalCase:
    pk = parse_id(case_id)
    if pk is None:
        raise EvalCase.DoesNotExist
    return EvalCase.objects.for_tenant(tenant).select_related("suite", "suite__prompt").get(pk=pk)


def eval_runs(*, tenant: Tenant) -> QuerySet[EvalRun]:
    return EvalRun.objects.for_tenant(tenant).select_related("suite", "prompt_version", "prompt_version__prompt")


def eval_run_get(*, tenant: Tenant, eval_run_id: object) -> EvalRun:
    pk = parse_id(eval_run_id)
    if pk is None:
        raise EvalRun.DoesNotExist
    return eval_runs(tenant=tenant).get(pk=pk)


def results(*, eval_run: EvalRun) -> QuerySet[EvalResult]:
    return EvalResult.objects.for_tenant(eval_run.tenant_id).filter(eval_run=eval_run).order_by("passed", "case_name")


def evidence_of(eval_run: EvalRun) -> EvalEvidence:
    failing = EvalResult.unscoped.filter(eval_run_id=eval_run.pk, passed=False).order_by("case_name").values_list("case_name", "critical")
    return EvalEvidence(
        eval_run_id=eval_run.pk, finished=eval_run.status == EvalRunStatus.FINISHED,
        pass_rate=eval_run.pass_rate if eval_run.pass_rate is not None else Decimal(0),
        failing_cases=tuple(name for name, _ in failing), failing_critical=tuple(name for name, critical in failing if critical),
    )


class EvalResults:
    """The prompts gate's source (prompts.gate.EvalResultsSource): the latest finished eval run of
    that exact version on any suite of its prompt; an unfinished one when none has finished yet."""

    def latest_for(self, version: PromptVersion) -> EvalEvidence | None:
        runs = EvalRun.unscoped.filter(tenant_id=version.tenant_id, prompt_version_id=version.pk, suite__prompt_id=version.prompt_id)
        found = runs.filter(status=EvalRunStatus.FINISHED).order_by("-finished_at", "-id").first()
        if found is None:
            found = runs.filter(status__in=(EvalRunStatus.QUEUED, EvalRunStatus.RUNNING)).order_by("-created_at", "-id").first()
        return evidence_of(found) if found is not None else None


@dataclass
class CaseDelta:
    name: str
    a: EvalResult | None
    b: EvalResult | None

    @property
    def change(self) -> str:
        if self.a is None or self.b is None:
            return "only in A" if self.b is None else "only in B"
        if self.a.passed and not self.b.passed:
            return "newly failing"
        if not self.a.passed and self.b.passed:
            return "newly passing"
        return "same"

    @property
    def cost_delta(self) -> Decimal | None:
        return None if self.a is None or self.b is None else self.b.cost - self.a.cost

    @property
    def turns_delta(self) -> int | None:
        return None if self.a is None or self.b is None else self.b.turns - self.a.turns


def compare(*, a: EvalRun, b: EvalRun) -> dict[str, Any]:
    ra = {r.case_name: r for r in results(eval_run=a)}
    rb = {r.case_name: r for r in results(eval_run=b)}
    order = {"newly failing": 0, "newly passing": 1, "only in A": 2, "only in B": 3, "same": 4}
    deltas = sorted((CaseDelta(n, ra.get(n), rb.get(n)) for n in set(ra) | set(rb)), key=lambda d: (order[d.change], d.name))
    return {
        "deltas": deltas,
        "newly_failing": [d for d in deltas if d.change == "newly failing"],
        "newly_passing": [d for d in deltas if d.change == "newly passing"],
        "cost_delta": b.cost - a.cost,
        "turns_delta": sum(r.turns for r in rb.values()) - sum(r.turns for r in ra.values()),
    }


def pass_rate_history(*, tenant: Tenant, suite: EvalSuite | None = None) -> list[dict[str, Any]]:
    """Finished eval runs in time order: (when, pass rate %, version number, suite) for the chart."""
    qs = eval_runs(tenant=tenant).filter(status=EvalRunStatus.FINISHED)
    if suite is not None:
        qs = qs.filter(suite=suite)
    return [{"at": r.finished_at.isoformat() if r.finished_at else None, "pass_pct": float(r.pass_pct or 0),
             "version": r.prompt_version.number, "suite": r.suite.name, "id": r.pk, "regression": r.regression}
            for r in qs.order_by("finished_at", "id")[:2000]]


def case_jsonl(case: EvalCase) -> str:
    return json.dumps(case.definition(), ensure_ascii=False, sort_keys=True)


def case_pretty(case: EvalCase) -> str:
    return json.dumps(case.definition(), ensure_ascii=False, indent=2)


def alerts(*, tenant: Tenant) -> QuerySet[EvalAlert]:
    return EvalAlert.objects.for_tenant(tenant).filter(acknowledged_at__isnull=True).select_related("eval_run", "eval_run__suite")


def eval_spend(*, tenant: Tenant) -> Decimal:
    """Spend of eval runs (their cases' runs and judges), kept apart from production spend on this page."""
    return EvalRun.objects.for_tenant(tenant).aggregate(total=Sum("cost"))["total"] or Decimal(0)
