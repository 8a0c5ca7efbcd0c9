"""The prompts API (scope ``prompts``): list prompts, fetch one by label or version (ETag, 304), create a
version (400 listing the problems), move a label (409 ``promotion_blocked`` with the failing cases).

Self-contained in the ``api_view`` style; the django-ninja port moves these bodies as they are.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified, JsonResponse

from prompts import gate, selectors, services
from prompts.models import LABEL_RE, PRODUCTION, Prompt, PromptLabel, PromptVersion
from tenants.api import ApiContext, ApiError, api_view

_VERSION = {
    "title": "PromptVersion", "type": "object",
    "properties": {
        "prompt": {"type": "string"}, "version": {"type": "integer"}, "sha256": {"type": "string"}, "labels": {"type": "array", "items": {"type": "string"}},
        "system": {"type": "string"}, "first_message": {"type": "string"}, "variables": {"type": "array", "items": {"type": "string"}},
        "model": {"type": "string"}, "params": {"type": "object"}, "tools": {"type": "array", "items": {"type": "string"}},
        "validators": {"type": "array"}, "changelog": {"type": "string"}, "created_at": {"type": "string", "format": "date-time"},
    },
    "required": ["prompt", "version", "sha256", "labels", "system", "first_message", "variables", "model", "params", "tools",
                 "validators", "changelog", "created_at"],
    "additionalProperties": False,
}


def version_as_dict(version: PromptVersion, *, prompt: Prompt, labels: list[str]) -> dict[str, Any]:
    return {"prompt": prompt.name, "version": version.number, "sha256": version.sha256, "labels": labels, "system": version.system,
            "first_message": version.first_message, "variables": list(version.variables or []), "model": version.model,
            "params": version.params or {}, "tools": list(version.tools or []), "validators": list(version.validators or []),
            "changelog": version.changelog, "created_at": version.created_at.isoformat()}


def _prompt_or_404(api: ApiContext, prompt_name: str) -> Prompt:
    prompt = Prompt.objects.for_tenant(api.tenant).filter(name=prompt_name[:100]).first()
    if prompt is None:
        raise ApiError(404, "not_found", "No such prompt.")
    return prompt


@api_view(scope="prompts", response={"GET 200": {"title": "PromptList", "type": "object", "properties": {"data": {"type": "array"}}, "required": ["data"]}})
def prompts_list(request: HttpRequest, api: ApiContext) -> HttpResponse:
    """The tenant's prompts, each with where its labels point."""
    data = [{"name": p.name, "path": p.path, "description": p.description, "versions": p.version_count,
             "labels": {label.name: (label.version.number if label.version else None) for label in p.labels.all()}}
            for p in selectors.prompt_list(tenant=api.tenant)]
    return JsonResponse({"data": data})


@api_view(scope="prompts", query={"label": {"type": "string", "pattern": LABEL_RE, "default": PRODUCTION},
                                  "version": {"type": "integer", "minimum": 1}},
          response={"GET 200": _VERSION})
def prompts_get(request: HttpRequest, api: ApiContext, prompt_name: str) -> HttpResponse:
    """One version by ``label`` (default production) or ``version``; ETag, and 304 for If-None-Match."""
    label, number = request.GET.get("label"), request.GET.get("version")
    if number is not None:
        if label is not None:
            raise ApiError(400, "invalid_request", "Send label or version, not both.")
        if not (number.isascii() and number.isdigit()) or not 0 < int(number) < 2**31:
            raise ApiError(400, "invalid_request", "version must be a positive integer.")
        version = (PromptVersion.objects.for_tenant(api.tenant).filter(prompt__name=prompt_name[:100], number=int(number))
                   .select_related("prompt").first())
    else:
        label = PRODUCTION if label is None else label
        found = (PromptLabel.objects.for_tenant(api.tenant).filter(prompt__name=prompt_name[:100], name=label[:50])
                 .select_related("version", "prompt").first())
        if found is None and not Prompt.objects.for_tenant(api.tenant).filter(name=prompt_name[:100]).exists():
            raise ApiError(404, "not_found", "No such prompt.")
        if found is None or found.version is None:
            raise ApiError(404, "not_found", f"Label {label[:50]} points at no version of this prompt.")
        version = found.version
        version.prompt = found.prompt
    if version is None:
        raise ApiError(404, "not_found", "No such prompt or version.")
    etag = f'"{version.pk}-{version.sha256[:32]}"'
    if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        resp: HttpResponse = HttpResponseNotModified()
    else:
        labels = list(PromptLabel.objects.for_tenant(api.tenant).filter(version=version).values_list("name", flat=True))
        resp = JsonResponse(version_as_dict(version, prompt=version.prompt, labels=sorted(labels)))
    resp["ETag"] = etag
    resp["Cache-Control"] = "private, no-cache"
    return resp


VERSION_BODY = {
    "title": "PromptVersionCreate", "type": "object",
    "properties": {
        "system": {"type": "string"}, "first_message": {"type": "string"}, "variables": {"type": "array", "items": {"type": "string"}},
        "model": {"type": "string", "maxLength": 100}, "params": {"type": "object"}, "tools": {"type": "array", "items": {"type": "string"}},
        "validators": {"type": "array", "items": {"type": "object"}}, "changelog": {"type": "string", "maxLength": 5000},
    },
    "required": ["system", "model"],
    "additionalProperties": False,
}


@api_view(scope="prompts", methods=("POST",), body=VERSION_BODY, max_body_bytes=512 * 1024, response={"POST 201": _VERSION})
def prompts_version_create(request: HttpRequest, api: ApiContext, prompt_name: str) -> HttpResponse:
    """Create a new immutable version (400 with ``problems`` listed on bad content; nothing saved)."""
    prompt = _prompt_or_404(api, prompt_name)
    body = dict(api.body)
    changelog = body.pop("changelog", "")
    try:
        version = services.version_create(tenant=api.tenant, actor=None, actor_key=api.key, prompt=prompt, data=body, changelog=changelog)
    except services.VersionInvalid as exc:
        return JsonResponse({"error": {"type": "invalid_request", "message": str(exc), "problems": exc.problems}}, status=400)
    return JsonResponse(version_as_dict(version, prompt=prompt, labels=[]), status=201)


LABEL_BODY = {
    "title": "PromptLabelMove", "type": "object",
    "properties": {"version": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}, "reason": {"type": "string", "maxLength": 2000},
                   "override": {"type": "boolean"}},
    "required": ["version"],
    "additionalProperties": False,
}


@api_view(scope="prompts", methods=("POST",), body=LABEL_BODY, response={"POST 200": {"title": "PromptLabelMoved", "type": "object"}})
def prompts_label_move(request: HttpRequest, api: ApiContext, prompt_name: str, label: str) -> HttpResponse:
    """Move a label (production is gated: 409 ``promotion_blocked`` with the failing cases)."""
    prompt = _prompt_or_404(api, prompt_name)
    version = PromptVersion.objects.for_tenant(api.tenant).filter(prompt=prompt, number=api.body["version"]).first()
    if version is None:
        raise ApiError(404, "not_found", "No such version of this prompt.")
    try:
        move = services.label_move(tenant=api.tenant, actor=None, actor_key=api.key, prompt=prompt, label_name=label, version=version,
                                   reason=api.body.get("reason", ""), override=bool(api.body.get("override")))
    except gate.OverrideForbidden as exc:
        raise ApiError(403, "forbidden", str(exc))
    except services.PromotionBlocked as exc:
        d = exc.decision
        return JsonResponse({"error": {"type": "promotion_blocked", "message": d.message, "code": d.code,
                                       "failing_cases": list(d.failing_cases), "failing_critical": list(d.failing_critical)}}, status=409)
    except ValidationError as exc:
        raise ApiError(400, "invalid_request", " ".join(exc.messages))
    return JsonResponse({"prompt": prompt.name, "label": move.label.name, "version": version.number,
                         "from_version": move.from_version.number if move.from_version else None, "override": move.override})
