"""The OpenAPI 3.1 document of the JSON API, generated from what each ``api_view`` declares.

Nothing is written twice: the paths come from the URL resolver, and each operation's scope,
methods, request body (a JSON Schema, the same one the wrapper validates against), query
parameters and response schemas from the attributes ``tenants.api.api_view`` sets on the view.
OpenAPI 3.1 schemas are JSON Schema 2020-12, so the body schemas go in unchanged.
tests/test_openapi.py validates the document and every endpoint's live answers against it.

Served at ``/api/v1/openapi.json`` and rendered as a page at ``/api/v1/docs`` (server-side: no
script, so the console's Content-Security-Policy needs no exception). Both are public: the
document describes the API, not any tenant's data.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import URLPattern, URLResolver, get_resolver

from tenants.api import error_response

API_PREFIX = "api/"
ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
            "required": ["type", "message"],
            "additionalProperties": False,
        },
    },
    "required": ["error"],
    "additionalProperties": False,
}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_STATUS_TEXT = {
    200: "OK", 201: "Created", 202: "Accepted", 400: "Bad request: the body or a query parameter (invalid_json, invalid_request).",
    401: "No, invalid or revoked API key (authentication_error).", 403: "The key lacks this endpoint's scope (permission_error).",
    404: "Not found in the key's tenant (not_found): another tenant's object is not found either.",
    413: "Body too large (request_too_large).", 415: "Not application/json (unsupported_media_type).",
    429: "Over the key's per-minute limit (rate_limit_error); wait Retry-After seconds.",
}


def _api_views(patterns: list[Any], prefix: str = "") -> list[tuple[str, str | None, Any]]:
    found: list[tuple[str, str | None, Any]] = []
    for p in patterns:
        if isinstance(p, URLResolver):
            found.extend(_api_views(p.url_patterns, prefix + str(p.pattern)))
        elif isinstance(p, URLPattern) and hasattr(p.callback, "api_access"):
            found.append((prefix + str(p.pattern), p.name, p.callback))
    return found


def _hoist(schema: Any, components: dict[str, Any]) -> Any:
    """A copy of ``schema`` where each sub-schema with a ``title`` (Run, Escalation, …) is a
    ``$ref`` to ``components/schemas/<title>``, so clients generate one type per shape."""
    if isinstance(schema, list):
        return [_hoist(item, components) for item in schema]
    if not isinstance(schema, dict):
        return schema
    copy = {k: _hoist(v, components) for k, v in schema.items()}
    title = schema.get("title")
    if not isinstance(title, str) or "properties" not in schema:
        return copy
    if components.setdefault(title, copy) != copy:
        raise ValueError(f"two different API schemas are titled {title!r}")
    return {"$ref": f"#/components/schemas/{title}"}


def _error(status: int) -> dict[str, Any]:
    return {"description": _STATUS_TEXT[status], "content": {"application/json": {"schema": _ERROR_REF}}}


def _summary(doc: str, method: str) -> str:
    """The docstring's ``METHOD:`` line for a view that answers several methods, else its first line."""
    lines = [line.strip() for line in doc.splitlines() if line.strip()]
    for line in lines:
        if line.startswith(f"{method}:"):
            return line.removeprefix(f"{method}:").strip()
    return lines[0].replace("``", "") if lines else ""


def _operation(route: str, name: str | None, view: Any, method: str, components: dict[str, Any]) -> dict[str, Any]:
    path_params = re.findall(r"<(?:\w+:)?(\w+)>", route)
    doc = (view.__doc__ or "").strip()
    op: dict[str, Any] = {
        "operationId": f"{name}_{method.lower()}" if len(view.api_methods) > 1 else name,
        "tags": [route.removeprefix("api/v1/").split("/")[0]],
        "summary": _summary(doc, method) or name or route,
        "security": [{"apiKey": [view.api_access]}],
        "x-scope": view.api_access,
        "parameters": [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in path_params],
        "responses": {},
    }
    if method == "GET":
        for pname, schema in view.api_query.items():
            op["parameters"].append({"name": pname, "in": "query", "required": False, "schema": schema,
                                     **({"description": schema["description"]} if "description" in schema else {})})
    if method != "GET" and view.api_body is not None:
        op["requestBody"] = {"required": False, "content": {"application/json": {"schema": _hoist(view.api_body, components)}}}
    for key, schema in view.api_response.items():
        verb, status = key.split()
        if verb != method:
            continue
        media = schema.get("contentMediaType", "application/json")
        op["responses"][status] = {"description": _STATUS_TEXT.get(int(status), "OK"), "content": {media: {"schema": _hoist(schema, components)}}}
    if (method == "GET" and view.api_query) or "requestBody" in op:
        op["responses"]["400"] = _error(400)
    op["responses"].update({"401": _error(401), "403": _error(403)})
    if path_params or method == "POST":
        op["responses"]["404"] = _error(404)
    if "requestBody" in op:
        op["responses"].update({"413": _error(413), "415": _error(415)})
    op["responses"]["429"] = _error(429)
    op["responses"]["default"] = {"description": "Any other error (e.g. 405, 409 invalid_state or arguments_mismatch, 503 during an outage).",
                                  "content": {"application/json": {"schema": _ERROR_REF}}}
    return op


@functools.cache
def document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}
    for route, name, view in _api_views(get_resolver().url_patterns):
        path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
        for method in view.api_methods:
            paths.setdefault(path, {})[method.lower()] = _operation(route, name, view, method, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "AgentOps API",
            "version": "v1",
            "description": "Tenant API keys as `Authorization: Bearer aok_…`; each operation needs the scope in its "
                           "`security` requirement. Errors are `{\"error\": {\"type\", \"message\"}}`.",
        },
        "servers": [{"url": "/"}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer", "bearerFormat": "aok_<prefix>_<secret>",
                                           "description": "A tenant API key; its scopes are runs, escalations, spend."}},
        },
    }


def openapi_json(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return error_response(405, "method_not_allowed", "Use GET.")
    return JsonResponse(document(), json_dumps_params={"indent": 1})


def docs(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return error_response(405, "method_not_allowed", "Use GET.")
    doc = document()
    operations = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            operations.append({
                "method": method.upper(), "path": path, "op": op,
                "body": json.dumps(op["requestBody"]["content"]["application/json"]["schema"], indent=2) if "requestBody" in op else None,
                "responses": [(status, r["description"], json.dumps(next(iter(r["content"].values()))["schema"], indent=2))
                              for status, r in op["responses"].items() if "content" in r],
            })
    schemas = [(name, json.dumps(schema, indent=2)) for name, schema in doc["components"]["schemas"].items()]
    return render(request, "api/docs.html", {"operations": operations, "schemas": schemas})
