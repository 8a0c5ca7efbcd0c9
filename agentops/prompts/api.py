"""The prompts API (a django-ninja router, scope ``prompts``): list prompts, fetch one by label or
version (ETag, 304), create a version (400 listing the problems), move a label (409
``promotion_blocked`` with the failing cases).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified, JsonResponse
from ninja import Field, Query, Router

from agentops.prompts import gate, selectors, services
from agentops.prompts.models import LABEL_RE, PRODUCTION, Prompt, PromptLabel, PromptVersion
from tenants.api import ApiError, ApiKeyAuth, QueryInt, RequestBody, ResponseBody, api_key

router = Router(tags=["prompts"], auth=ApiKeyAuth("prompts"))


class PromptSummary(ResponseBody):
    name: str
    path: str
    description: str
    versions: int
    labels: dict[str, int | None] = Field(description="Each label and the version number it points at.")


class PromptList(ResponseBody):
    data: list[PromptSummary]


class VersionOut(ResponseBody):
    prompt: str
    version: int
    sha256: str
    label: str | None = Field(description="The label asked for (null when fetched by version).")
    system: str
    first_message: str
    variables: list[str] = Field(description="The variables the first-message template renders.")
    model: str
    params: dict[str, Any]
    tools: list[str]
    validators: list[dict[str, Any]]
    changelog: str
    created_at: datetime


class VersionIn(RequestBody):
    system: str
    model: str = Field(max_length=100)
    first_message: str = ""
    variables: list[str] = []
    params: dict[str, Any] = {}
    tools: list[str] = []
    validators: list[dict[str, Any]] = []
    changelog: str = Field("", max_length=5000)


class LabelMoveIn(RequestBody):
    version: int = Field(ge=1, le=2**31 - 1)
    reason: str = Field("", max_length=2000)
    override: bool = Field(False, description="Admins only: API keys never act as admin, so true is 403.")


class LabelMoved(ResponseBody):
    prompt: str
    label: str
    version: int
    from_version: int | None
    override: bool


def version_as_dict(version: PromptVersion, *, prompt: Prompt, label: str | None) -> dict[str, Any]:
    return {"prompt": prompt.name, "version": version.number, "sha256": version.sha256, "label": label, "system": version.system,
            "first_message": version.first_message, "variables": list(version.variables or []), "model": version.model,
            "params": version.params or {}, "tools": list(version.tools or []), "validators": list(version.validators or []),
            "changelog": version.changelog, "created_at": version.created_at.isoformat()}


def _prompt_or_404(request: HttpRequest, prompt_name: str) -> Prompt:
    prompt = Prompt.objects.for_tenant(api_key(request).tenant).filter(name=prompt_name[:100]).first()
    if prompt is None:
        raise ApiError(404, "not_found", "No such prompt.")
    return prompt


@router.get("/prompts", url_name="api_prompts_list", response=PromptList)
def prompts_list(request: HttpRequest) -> dict[str, Any]:
    """The tenant's prompts, each with where its labels point."""
    data = [{"name": p.name, "path": p.path, "description": p.description, "versions": p.version_count,  # type: ignore[attr-defined]  # annotated by prompt_list
             "labels": {label.name: (label.version.number if label.version else None) for label in p.labels.all()}}
            for p in selectors.prompt_list(tenant=api_key(request).tenant)]
    return {"data": data}


@router.get("/prompts/{prompt_name}", url_name="api_prompts_get", response={200: VersionOut, 304: None})
def prompts_get(request: HttpRequest, prompt_name: str,
                label: str | None = Query(None, pattern=LABEL_RE, description="Default production."),
                version: QueryInt | None = Query(None, ge=1, le=2**31 - 1)) -> HttpResponse:
    """One version by label (default production) or version number; ETag, and 304 for If-None-Match."""
    tenant = api_key(request).tenant
    name = prompt_name[:100]
    if version is not None:
        if label is not None:
            raise ApiError(400, "invalid_request", "Send label or version, not both.")
        row = PromptVersion.objects.for_tenant(tenant).filter(prompt__name=name, number=version).values_list("pk", "sha256").first()
        if row is None:
            raise ApiError(404, "not_found", "No such prompt or version.")
    else:
        label = label or PRODUCTION
        # One indexed query decides the ETag: a client with the current version gets its 304 from it alone.
        row = (PromptLabel.objects.for_tenant(tenant).filter(prompt__name=name, name=label)
               .values_list("version_id", "version__sha256").first())
        if row is None and not Prompt.objects.for_tenant(tenant).filter(name=name).exists():
            raise ApiError(404, "not_found", "No such prompt.")
        if row is None or row[0] is None:
            raise ApiError(404, "not_found", f"Label {label} points at no version of this prompt.")
    etag = f'"{row[0]}-{row[1][:32]}"'
    resp: HttpResponse
    if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        resp = HttpResponseNotModified()
    else:
        found = PromptVersion.objects.for_tenant(tenant).select_related("prompt").get(pk=row[0])
        resp = JsonResponse(version_as_dict(found, prompt=found.prompt, label=label))
    resp["ETag"] = etag
    resp["Cache-Control"] = "private, no-cache"
    return resp


@router.post("/prompts/{prompt_name}/versions", url_name="api_prompts_versions", response={201: VersionOut},
             auth=ApiKeyAuth("prompts", max_body_bytes=512 * 1024))
def prompts_version_create(request: HttpRequest, prompt_name: str, body: VersionIn) -> HttpResponse:
    """Create a new immutable version (400 with ``problems`` listed on bad content; nothing saved)."""
    prompt = _prompt_or_404(request, prompt_name)
    key = api_key(request)
    data = body.model_dump()
    changelog = data.pop("changelog")
    try:
        created = services.version_create(tenant=key.tenant, actor=None, actor_key=key, prompt=prompt, data=data, changelog=changelog)
    except services.VersionInvalid as exc:
        return JsonResponse({"error": {"type": "invalid_request", "message": str(exc), "problems": exc.problems}}, status=400)
    return JsonResponse(version_as_dict(created, prompt=prompt, label=None), status=201)


@router.post("/prompts/{prompt_name}/labels/{label}", url_name="api_prompts_label", response=LabelMoved)
def prompts_label_move(request: HttpRequest, prompt_name: str, label: str, body: LabelMoveIn) -> Any:
    """Move a label (production is gated: 409 promotion_blocked with the failing cases)."""
    key = api_key(request)
    prompt = _prompt_or_404(request, prompt_name)
    version = PromptVersion.objects.for_tenant(key.tenant).filter(prompt=prompt, number=body.version).first()
    if version is None:
        raise ApiError(404, "not_found", "No such version of this prompt.")
    try:
        move = services.label_move(tenant=key.tenant, actor=None, actor_key=key, prompt=prompt, label_name=label, version=version,
                                   reason=body.reason, override=body.override)
    except gate.OverrideForbidden as exc:
        raise ApiError(403, "permission_error", str(exc))
    except services.PromotionBlocked as exc:
        d = exc.decision
        return JsonResponse({"error": {"type": "promotion_blocked", "message": d.message, "code": d.code,
                                       "failing_cases": list(d.failing_cases), "failing_critical": list(d.failing_critical)}}, status=409)
    except ValidationError as exc:
        raise ApiError(400, "invalid_request", " ".join(exc.messages))
    return {"prompt": prompt.name, "label": move.label.name, "version": version.number,
            "from_version": move.from_version.number if move.from_version else None, "override": move.override}
