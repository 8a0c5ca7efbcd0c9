"""The JSON API's front door: Bearer tenant keys, scopes, a per-key rate limit, JSON errors.

Every API view is wrapped by :func:`api_view`; the isolation tests walk ``/api/`` URLs and fail
for any view without the ``api_access`` attribute it sets. Errors always have the shape
``{"error": {"type": …, "message": …}}``.

A view that takes a body declares it as a JSON Schema (``api_view(body=…)``); the wrapper reads
it with :func:`agentops.jsoninput.loads` (depth, NaN, surrogates, NUL) and validates it before the
view runs, so the view sees ``api.body`` already shaped and a bad body is a 400 on every endpoint.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaError
from jsonschema.exceptions import best_match

from agentops.jsoninput import JsonInputError, loads
from tenants.models import ApiKey, Tenant
from tenants.services import api_key_authenticate

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, type_: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.type, self.message, self.headers = status, type_, message, headers or {}


def error_response(status: int, type_: str, message: str, headers: dict[str, str] | None = None) -> JsonResponse:
    resp = JsonResponse({"error": {"type": type_, "message": message}}, status=status)
    for k, v in (headers or {}).items():
        resp[k] = v
    return resp


@dataclass
class ApiContext:
    key: ApiKey
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def tenant(self) -> Tenant:
        return self.key.tenant


BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# A body-taking endpoint with nothing to say still declares it: an empty object (or no body at all).
EMPTY_BODY: dict[str, Any] = {"type": "object", "additionalProperties": False}
_TYPE_NAMES = {"string": "a string", "integer": "an integer", "number": "a number", "object": "an object",
               "array": "an array", "boolean": "true or false", "null": "null"}


def _schema_message(error: SchemaError) -> str:
    """A short message naming the field; never an echo of a (possibly huge) value."""
    name = ".".join(str(p) for p in error.absolute_path)
    where = f"'{name}'" if name else "The body"
    rule, want = error.validator, error.validator_value
    if rule == "type":
        kinds = [want] if isinstance(want, str) else list(want)
        return f"{where} must be {' or '.join(_TYPE_NAMES.get(k, k) for k in kinds)}."
    if rule == "enum":
        return f"{where} must be one of {', '.join(map(str, want))}."
    if rule == "required":
        return error.message[:200]
    if rule == "additionalProperties" and isinstance(error.instance, dict):
        unknown = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return f"Unknown fields: {', '.join(unknown)[:200]}."
    if rule == "maxLength":
        return f"{where} must be at most {want} characters."
    if rule == "minLength":
        return f"{where} must be at least {want} characters." if want > 1 else f"{where} must not be empty."
    return f"{where} is invalid ({rule})."


def json_body(request: HttpRequest, *, validator: Draft202012Validator, max_bytes: int = 64 * 1024) -> dict[str, Any]:
    """The request body as a dict that satisfies the validator's schema, or :class:`ApiError` (400/413/415)."""
    if len(request.body) > max_bytes:
        raise ApiError(413, "request_too_large", f"Body over {max_bytes} bytes.")
    ctype = request.META.get("CONTENT_TYPE", "")
    if ctype and not ctype.startswith("application/json"):
        raise ApiError(415, "unsupported_media_type", "Send application/json.")
    try:
        data = loads(request.body or b"{}")
    except JsonInputError as exc:
        raise ApiError(400, exc.kind, exc.message)
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "The body must be a JSON object.")
    error = best_match(validator.iter_errors(data))
    if error is not None:
        raise ApiError(400, "invalid_request", _schema_message(error))
    return data


def _rate_limited(key: ApiKey) -> int | None:
    """Fixed one-minute window in Redis; returns seconds to wait when over the limit."""
    limit = key.tenant.tier.api_rate_limit_per_minute
    window = int(time.time() // 60)
    try:
        import django_rq

        conn = django_rq.get_connection("default")
        name = f"agentops:rl:{key.pk}:{window}"
        pipe = conn.pipeline()
        pipe.incr(name)
        pipe.expire(name, 61)
        count = pipe.execute()[0]
    except Exception:  # Redis down: the API keeps answering; the limit is best effort.
        log.warning("rate limiter unavailable; request allowed")
        return None
    if int(count) > limit:
        return max(1, 60 - int(time.time()) % 60)
    return None


def api_view(
    *, scope: str, methods: tuple[str, ...] = ("GET",), body: dict[str, Any] | None = None, max_body_bytes: int = 64 * 1024,
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """``body`` is the JSON Schema of the request body; every method in ``BODY_METHODS`` needs one."""
    if BODY_METHODS.intersection(methods):
        if body is None:
            raise ImproperlyConfigured(f"api_view(methods={methods}) takes a body: declare its schema with body=.")
    if body is not None:
        Draft202012Validator.check_schema(body)
    validator = Draft202012Validator(body) if body is not None else None

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                return error_response(405, "method_not_allowed", f"Use {', '.join(methods)}.")
            auth = request.META.get("HTTP_AUTHORIZATION", "")
            if not auth.startswith("Bearer "):
                return error_response(401, "authentication_error", "Send Authorization: Bearer <API key>.")
            key = api_key_authenticate(auth[7:].strip())
            if key is None:
                return error_response(401, "authentication_error", "Invalid or revoked API key.")
            if scope not in key.scopes:
                return error_response(403, "permission_error", f"This key lacks the '{scope}' scope.")
            wait = _rate_limited(key)
            if wait is not None:
                return error_response(429, "rate_limit_error", "Too many requests for this key.", {"Retry-After": str(wait)})
            try:
                api = ApiContext(key=key)
                if validator is not None and request.method in BODY_METHODS:
                    # Before any object lookup: the answer to a bad body does not depend on what exists.
                    api.body = json_body(request, validator=validator, max_bytes=max_body_bytes)
                return view(request, api, *args, **kwargs)
            except ApiError as exc:
                return error_response(exc.status, exc.type, exc.message, exc.headers)

        wrapper.api_access = scope  # type: ignore[attr-defined]
        wrapper.api_methods = methods  # type: ignore[attr-defined]
        wrapper.api_body = body  # type: ignore[attr-defined]
        wrapper.api_max_body_bytes = max_body_bytes  # type: ignore[attr-defined]
        return wrapper

    return decorator
