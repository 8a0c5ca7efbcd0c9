"""The JSON API: one django-ninja ``NinjaAPI`` at ``/api/v1/`` with each app's router.

The front door (Bearer keys, scopes, rate limit, body admission, the strict JSON parser) is in
``tenants/api.py``; here are the pieces that need the whole API:

* exception handlers, so that every error is ``{"error": {"type", "message"}}`` — ninja's
  validation errors (400 ``invalid_request``) and its own 404/HttpError answers; anything else
  goes on to Django, so an outage is still the 503 of agentops/outage.py;
* the OpenAPI 3.1 document ninja generates (``/api/v1/openapi.json``), completed with what ninja
  does not know: each operation's scope in its security requirement, and the error responses
  every operation can give, all with the ``Error`` schema;
* the reference page (``/api/v1/docs``), rendered on the server from that document: no script and
  nothing from a CDN, so the console's Content-Security-Policy needs no exception.

Both the document and the page are public: they describe the API, not any tenant's data.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from ninja import NinjaAPI
from ninja.errors import HttpError, ValidationError
from ninja.openapi.docs import DocsBase
from ninja.openapi.schema import OpenAPISchema
from ninja.operation import Operation
from ninja.renderers import JSONRenderer
from ninja.responses import NinjaJSONEncoder

from agentops.escalations.api import router as escalations_router
from agentops.evals.api import router as evals_router
from agentops.memory.api import router as memory_router
from agentops.middleware import API_ERROR_TYPES
from agentops.prompts.api import router as prompts_router
from budgets.api import router as spend_router
from runs.api import router as runs_router
from tenants.api import ApiError, ApiKeyAuth, Error, StrictJsonParser, error_response, validation_message

_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_STATUS_TEXT = {
    400: "Bad request: the body or a query parameter (invalid_json, invalid_request).",
    401: "No, invalid or revoked API key (authentication_error).",
    403: "The key lacks this endpoint's scope (permission_error).",
    404: "Not found in the key's tenant (not_found): another tenant's object is not found either.",
    413: "Body too large (request_too_large).",
    415: "Not application/json (unsupported_media_type).",
    429: "Over the key's per-minute limit (rate_limit_error); wait Retry-After seconds.",
}


class _Encoder(NinjaJSONEncoder):
    """Datetimes and dates as ``isoformat()`` (microseconds and offset kept), as before ninja."""

    def default(self, o: Any) -> Any:
        if hasattr(o, "isoformat"):
            return o.isoformat()
        return super().default(o)


class _Renderer(JSONRenderer):
    encoder_class = _Encoder


class _Schema(OpenAPISchema):
    def operation_security(self, operation: Operation) -> list[dict[str, Any]] | None:
        """One ``ApiKey`` bearer scheme; the requirement names the operation's scope."""
        result = []
        for auth in operation.auth_callbacks:
            if isinstance(auth, ApiKeyAuth):
                result.append({"ApiKey": [auth.scope]})
                self.securitySchemes["ApiKey"] = auth.openapi_security_schema
        return result or None

    def operation_details(self, operation: Operation) -> dict[str, Any]:
        """The docstring's first line is the summary; a body's size limit is ``x-max-body-bytes``."""
        result: dict[str, Any] = super().operation_details(operation)
        result["summary"] = (operation.description or "").strip().split("\n")[0].replace("``", "") or result["summary"]
        keys = [a for a in operation.auth_callbacks if isinstance(a, ApiKeyAuth)]
        if "requestBody" in result and keys:
            result["x-max-body-bytes"] = keys[0].max_body_bytes
        return result

    def request_body(self, operation: Operation) -> dict[str, Any]:
        """An optional body schema (``body: NoBody = _NO_BODY``) as a plain ``$ref``, not ``allOf: [$ref]``."""
        result: dict[str, Any] = super().request_body(operation)
        for media in result.get("content", {}).values():
            schema = media["schema"]
            if len(schema.get("allOf", ())) == 1:
                media["schema"] = schema["allOf"][0]
        return result

    def responses(self, operation: Operation) -> dict[Any, Any]:
        """ninja's success responses, then the errors this operation can answer."""
        result: dict[Any, Any] = super().responses(operation)
        sources = {m.__ninja_param_source__ for m in operation.models}
        codes = [401, 403]
        if "query" in sources or "header" in sources or "body" in sources:
            codes.insert(0, 400)
        if "path" in sources or "POST" in operation.methods:
            codes.append(404)
        if "body" in sources:
            codes += [413, 415]
        codes.append(429)
        keys = [a for a in operation.auth_callbacks if isinstance(a, ApiKeyAuth)]
        for code in codes:
            text = _STATUS_TEXT[code]
            if code == 413 and keys:
                text = f"Body over {keys[0].max_body_bytes} bytes (request_too_large)."
            result[code] = {"description": text, "content": {"application/json": {"schema": _ERROR_REF}}}
        result["default"] = {
            "description": "Any other error (e.g. 405, 409 invalid_state or arguments_mismatch, 503 during an outage).",
            "content": {"application/json": {"schema": _ERROR_REF}},
        }
        return result

    def get_components(self) -> dict[str, Any]:
        components: dict[str, Any] = super().get_components()
        error = Error.model_json_schema(ref_template="#/components/schemas/{model}")
        components["schemas"].update(error.pop("$defs", {}))
        components["schemas"]["Error"] = error
        components["schemas"] = dict(sorted(components["schemas"].items()))
        return components


def _type_label(schema: dict[str, Any]) -> str:
    """A parameter's schema in a few words: ``integer 1–100``, ``string (date-time)``, ``one of a, b``."""
    options = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
    words = []
    for s in options:
        if "enum" in s:
            words.append("one of " + ", ".join(map(str, s["enum"])))
            continue
        word = str(s.get("type", "")) + (f" ({s['format']})" if "format" in s else "")
        if "minimum" in s or "maximum" in s:
            word += f" {s.get('minimum', '')}–{s.get('maximum', '')}"
        words.append(word.strip())
    return " or ".join(w for w in words if w)


def _shown(schema: dict[str, Any]) -> dict[str, Any]:
    """A schema for the page: a plain ``$ref`` becomes a link to that schema's card."""
    ref = schema.get("$ref", "")
    if ref and len(schema) == 1:
        return {"ref": ref.rsplit("/", 1)[1]}
    return {"json": json.dumps(schema, indent=2)}


class _Docs(DocsBase):
    """The reference page, server-rendered from the document (templates/api/docs.html)."""

    def render_page(self, request: HttpRequest, api: NinjaAPI, **kwargs: Any) -> HttpResponse:
        doc = api.get_openapi_schema(path_params=kwargs)
        operations = []
        for path, item in doc["paths"].items():
            for method, op in item.items():
                body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
                operations.append({
                    "method": method.upper(), "path": path, "op": op,
                    "scope": ", ".join(s for req in op.get("security", []) for scopes in req.values() for s in scopes),
                    "parameters": [{**p, "label": _type_label(p["schema"])} for p in op["parameters"]],
                    "body": _shown(body) if body else None,
                    "responses": [(status, r["description"], _shown(next(iter(r["content"].values()))["schema"]))
                                  for status, r in op["responses"].items() if "content" in r],
                })
        schemas = [(name, json.dumps(schema, indent=2)) for name, schema in doc["components"]["schemas"].items()]
        return render(request, "api/docs.html", {"operations": operations, "schemas": schemas,
                                                 "openapi_url": self.get_openapi_url(api, kwargs)})


class AgentOpsApi(NinjaAPI):
    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._documents: dict[str, OpenAPISchema] = {}

    def get_openapi_schema(self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None) -> OpenAPISchema:
        """Built once (about 50 ms): the operations it describes are fixed when the URLs load."""
        if path_prefix is None:
            path_prefix = self.get_root_path(path_params or {})
        if path_prefix not in self._documents:
            self._documents[path_prefix] = _Schema(api=self, path_prefix=path_prefix)
        return self._documents[path_prefix]

    def get_openapi_operation_id(self, operation: Operation) -> str:
        return str(operation.view_func.__name__)  # runs_list, runs_submit, … (unique across the API)

    def get_content_type(self) -> str:
        return "application/json"  # JSON is UTF-8 (RFC 8259); no charset parameter, as before ninja


api = AgentOpsApi(
    title="AgentOps API",
    version="v1",
    description="Tenant API keys as `Authorization: Bearer aok_…`; each operation needs the scope in its "
                "`security` requirement. Errors are `{\"error\": {\"type\", \"message\"}}`.",
    urls_namespace="api",
    parser=StrictJsonParser(),
    renderer=_Renderer(),
    docs=_Docs(),
    docs_url="/docs",
    openapi_url="/openapi.json",
    servers=[{"url": "/"}],
)
api.add_router("", runs_router)
api.add_router("", escalations_router)
api.add_router("", spend_router)
api.add_router("", prompts_router)
api.add_router("", evals_router)
api.add_router("", memory_router)


@api.exception_handler(ApiError)
def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    return error_response(exc.status, exc.type, exc.message, exc.headers)


@api.exception_handler(ValidationError)
def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    return error_response(400, "invalid_request", validation_message(exc.errors))


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    # ninja wraps what the parser raises ("Cannot parse request body"); ours says what was wrong.
    if isinstance(exc.__cause__, ApiError):
        return _api_error(request, exc.__cause__)
    status = exc.status_code
    return error_response(status, API_ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request"), str(exc))


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return error_response(404, "not_found", "Not found.")


@api.exception_handler(Exception)
def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    """Anything else goes on to Django, in DEBUG as well (ninja would answer a plain-text traceback):
    an outage becomes the 503 of agentops/outage.py, the rest a JSON 500 (handler500)."""
    raise exc
