"""The evals API (a django-ninja router, scope ``evals``): start an eval run of a suite against a
prompt version — a team's CI gates a prompt change on it — and follow it. Everything is looked up
within the key's tenant."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from ninja import Field, Router
from pydantic import StringConstraints

from agentops.evals import selectors, services
from agentops.evals.models import EvalRun as EvalRunRow
from agentops.evals.models import EvalRunStatus, EvalSuite, Trigger
from tenants.access import parse_id
from tenants.api import ApiError, ApiKeyAuth, Money, RequestBody, ResponseBody, api_key
from tenants.money import money_str

router = Router(tags=["evals"], auth=ApiKeyAuth("evals"))


class EvalRunStart(RequestBody):
    suite: Annotated[str, StringConstraints(min_length=1, max_length=100)] | int = Field(description="The suite's name or id.")
    label: Annotated[str, StringConstraints(min_length=1, max_length=50)] | None = Field(
        None, description="Test the version this label points at (default production).")
    version: Annotated[int, Field(ge=1)] | None = Field(None, description="Test this version number instead of a label.")


class FailingCase(ResponseBody):
    case: str
    critical: bool
    reasons: list[str]


class EvalRun(ResponseBody):
    id: int
    suite: str
    prompt: str
    version: int
    label: str | None
    model: str
    trigger: Trigger
    status: EvalRunStatus
    total: int
    done: int
    passed: int
    pass_rate: str | None = Field(description="0 to 1, an exact decimal; null until finished.")
    cost_usd: Money
    regression: bool
    failing: list[FailingCase]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def eval_run_as_dict(eval_run: EvalRunRow) -> dict[str, Any]:
    failing = [{"case": r.case_name, "critical": r.critical, "reasons": [v["reason"] for v in r.verdicts if not v.get("passed")]}
               for r in selectors.results(eval_run=eval_run).filter(passed=False)]
    return {
        "id": eval_run.pk, "suite": eval_run.suite.name, "prompt": eval_run.prompt_version.prompt.name,
        "version": eval_run.prompt_version.number, "label": eval_run.label or None, "model": eval_run.model,
        "trigger": eval_run.trigger, "status": eval_run.status, "total": eval_run.total, "done": eval_run.done,
        "passed": eval_run.passed, "pass_rate": None if eval_run.pass_rate is None else str(eval_run.pass_rate),
        "cost_usd": money_str(eval_run.cost), "regression": eval_run.regression, "failing": failing,
        "created_at": eval_run.created_at, "started_at": eval_run.started_at, "finished_at": eval_run.finished_at,
    }


def _suite(request: HttpRequest, ref: object) -> EvalSuite:
    qs = selectors.suites(tenant=api_key(request).tenant)
    pk = parse_id(ref)
    found = qs.filter(pk=pk).first() if pk is not None else None
    found = found or (qs.filter(name=ref).first() if isinstance(ref, str) else None)
    if found is None:
        raise ApiError(404, "not_found", "No such eval suite in this tenant.")
    return found


@router.post("/eval-runs", url_name="api_eval_runs", response={201: EvalRun})
def eval_runs_start(request: HttpRequest, body: EvalRunStart, response: HttpResponse) -> dict[str, Any]:
    """Start an eval run of a suite against the version a label points at (or a version number);
    its cases run on the workers. Follow it with GET /api/v1/eval-runs/<id>."""
    if body.label is not None and body.version is not None:
        raise ApiError(400, "invalid_request", "Give a label or a version, not both.")
    suite = _suite(request, body.suite)
    try:
        version, label = services.resolve_version(suite=suite, label=body.label, version=body.version)
        eval_run = services.eval_run_start(suite=suite, version=version, actor=api_key(request).created_by, trigger=Trigger.API,
                                           label=label)
    except ValidationError as exc:
        raise ApiError(400, "invalid_request", " ".join(exc.messages))
    response["Location"] = f"/api/v1/eval-runs/{eval_run.pk}"
    return eval_run_as_dict(eval_run)


@router.get("/eval-runs/{eval_run_id}", url_name="api_eval_runs_detail", response=EvalRun)
def eval_runs_detail(request: HttpRequest, eval_run_id: str) -> dict[str, Any]:
    """One eval run: status, progress, pass rate, cost and the failing cases with their reasons."""
    try:
        eval_run = selectors.eval_run_get(tenant=api_key(request).tenant, eval_run_id=eval_run_id)
    except EvalRunRow.DoesNotExist:
        raise ApiError(404, "not_found", "No such eval run.")
    return eval_run_as_dict(eval_run)
