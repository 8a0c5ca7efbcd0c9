"""The evals API: start an eval run of a suite against a prompt version (CI gates a prompt change
on it) and follow it. Scope ``evals``; everything is looked up within the key's tenant."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse

from evals import selectors, services
from evals.models import EvalRun, EvalRunStatus, EvalSuite, Trigger
from tenants.access import parse_id
from tenants.api import ApiContext, ApiError, api_view
from tenants.money import money_str

EVAL_RUN_BODY = {
    "title": "EvalRunStart",
    "type": "object",
    "properties": {
        "suite": {"type": ["string", "integer"], "minLength": 1, "maxLength": 100, "description": "The suite's name or id."},
        "label": {"type": "string", "minLength": 1, "maxLength": 50, "description": "Test the version this label points at (default production)."},
        "version": {"type": "integer", "minimum": 1, "description": "Test this version number instead of a label."},
    },
    "required": ["suite"],
    "additionalProperties": False,
}
_FAILING = {"type": "object", "properties": {"case": {"type": "string"}, "critical": {"type": "boolean"},
                                             "reasons": {"type": "array", "items": {"type": "string"}}},
            "required": ["case", "critical", "reasons"], "additionalProperties": False}
EVAL_RUN_SCHEMA = {
    "title": "EvalRun",
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "suite": {"type": "string"},
        "prompt": {"type": "string"},
        "version": {"type": "integer"},
        "label": {"type": ["string", "null"]},
        "model": {"type": "string"},
        "trigger": {"enum": list(Trigger.values)},
        "status": {"enum": list(EvalRunStatus.values)},
        "total": {"type": "integer"},
        "done": {"type": "integer"},
        "passed": {"type": "integer"},
        "pass_rate": {"type": ["string", "null"], "description": "0 to 1, exact decimal; null until finished."},
        "cost_usd": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?$"},
        "regression": {"type": "boolean"},
        "failing": {"type": "array", "items": _FAILING},
        "created_at": {"type": "string", "format": "date-time"},
        "started_at": {"type": ["string", "null"], "format": "date-time"},
        "finished_at": {"type": ["string", "null"], "format": "date-time"},
    },
    "required": ["id", "suite", "prompt", "version", "label", "model", "trigger", "status", "total", "done", "passed", "pass_rate",
                 "cost_usd", "regression", "failing", "created_at", "started_at", "finished_at"],
    "additionalProperties": False,
}


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


def eval_run_as_dict(eval_run: EvalRun) -> dict[str, Any]:
    failing = [{"case": r.case_name, "critical": r.critical, "reasons": [v["reason"] for v in r.verdicts if not v.get("passed")]}
               for r in selectors.results(eval_run=eval_run).filter(passed=False)]
    return {
        "id": eval_run.pk, "suite": eval_run.suite.name, "prompt": eval_run.prompt_version.prompt.name,
        "version": eval_run.prompt_version.number, "label": eval_run.label or None, "model": eval_run.model,
        "trigger": eval_run.trigger, "status": eval_run.status, "total": eval_run.total, "done": eval_run.done,
        "passed": eval_run.passed, "pass_rate": None if eval_run.pass_rate is None else str(eval_run.pass_rate),
        "cost_usd": money_str(eval_run.cost), "regression": eval_run.regression, "failing": failing,
        "created_at": _iso(eval_run.created_at), "started_at": _iso(eval_run.started_at), "finished_at": _iso(eval_run.finished_at),
    }


def _suite(api: ApiContext, ref: object) -> EvalSuite:
    qs = selectors.suites(tenant=api.tenant)
    pk = parse_id(ref)
    found = qs.filter(pk=pk).first() if pk is not None else None
    found = found or (qs.filter(name=ref).first() if isinstance(ref, str) else None)
    if found is None:
        raise ApiError(404, "not_found", "No such eval suite in this tenant.")
    return found


@api_view(scope="evals", methods=("POST",), body=EVAL_RUN_BODY, response={"POST 201": EVAL_RUN_SCHEMA})
def eval_runs_collection(request: HttpRequest, api: ApiContext) -> HttpResponse:
    """Start an eval run of a suite against the version a label points at (or a version number);
    its cases run on the workers. Follow it with GET /api/v1/eval-runs/<id>."""
    body = api.body
    if "label" in body and "version" in body:
        raise ApiError(400, "invalid_request", "Give a label or a version, not both.")
    suite = _suite(api, body["suite"])
    try:
        version, label = services.resolve_version(suite=suite, label=body.get("label"), version=body.get("version"))
        eval_run = services.eval_run_start(suite=suite, version=version, actor=api.key.created_by, trigger=Trigger.API, label=label)
    except ValidationError as exc:
        raise ApiError(400, "invalid_request", " ".join(exc.messages))
    resp = JsonResponse(eval_run_as_dict(eval_run), status=201)
    resp["Location"] = f"/api/v1/eval-runs/{eval_run.pk}"
    return resp


@api_view(scope="evals", response={"GET 200": EVAL_RUN_SCHEMA})
def eval_runs_detail(request: HttpRequest, api: ApiContext, eval_run_id: str) -> HttpResponse:
    """One eval run: status, progress, pass rate, cost and the failing cases with their reasons."""
    try:
        eval_run = selectors.eval_run_get(tenant=api.tenant, eval_run_id=eval_run_id)
    except EvalRun.DoesNotExist:
        raise ApiError(404, "not_found", "No such eval run.")
    return JsonResponse(eval_run_as_dict(eval_run))
