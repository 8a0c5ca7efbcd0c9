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
import inspect
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.asgi import ASGIRequest
from django.db import close_old_connections
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


def _authorize(
    request: HttpRequest, scope: str, methods: tuple[str, ...], validator: Draft202012Validator | None, max_body_bytes: int,
) -> ApiContext | HttpResponse:
    """Method, Bearer key, scope, rate limit and body: the context for the view, or the error to answer."""
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
    api = ApiContext(key=key)
    if validator is not None and request.method in BODY_METHODS:
        # Before any object lookup: the answer to a bad body does not depend on what exists.
        try:
            api.body = json_body(request, validator=validator, max_bytes=max_body_bytes)
        except ApiError as exc:
            return error_response(exc.status, exc.type, exc.message, exc.headers)
    return api


T = TypeVar("T")
_db_executor: ThreadPoolExecutor | None = None
_db_executor_lock = threading.Lock()


def _events_db_executor() -> ThreadPoolExecutor:
    global _db_executor
    with _db_executor_lock:
        if _db_executor is None:
            _db_executor = ThreadPoolExecutor(max_workers=settings.EVENTS_DB_THREADS, thread_name_prefix="api-db")
        return _db_executor


def _in_db_thread(func: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(func)
    def call(*args: Any, **kwargs: Any) -> T:
        # These threads outlive requests: drop a connection that broke or aged out, as a request would.
        close_old_connections()
        try:
            return func(*args, **kwargs)
        finally:
            close_old_connections()

    return call


async def db_call(request: HttpRequest, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run database code from an async API view.

    Under ASGI it runs on a small shared pool of ``EVENTS_DB_THREADS`` threads, so a process holds
    at most that many database connections however many streams are open (Django's default would
    give each request a thread, and a connection, of its own). Under WSGI (and the test client) it
    runs in the request's own thread, on the request's connection.
    """
    if isinstance(request, ASGIRequest):
        return await sync_to_async(_in_db_thread(func), thread_sensitive=False, executor=_events_db_executor())(*args, **kwargs)
    return await sync_to_async(func, thread_sensitive=True)(*args, **kwargs)


def api_view(
    *, scope: str, methods: tuple[str, ...] = ("GET",), body: dict[str, Any] | None = None, max_body_bytes: int = 64 * 1024,
    query: dict[str, dict[str, Any]] | None = None, response: dict[str, Any] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Wraps a sync or an async view; an async view gets its key checked through :func:`db_call`.

    ``body`` is the JSON Schema of the request body; every method in ``BODY_METHODS`` needs one.
    ``query`` names the query parameters the view reads (each with a JSON Schema; the view parses
    them and answers 400 for a bad value); ``response`` maps status codes to response body schemas.
    Both feed the OpenAPI document (:mod:`agentops.openapi`) and the generated tests.
    """
    if BODY_METHODS.intersection(methods):
        if body is None:
            raise ImproperlyConfigured(f"api_view(methods={methods}) takes a body: declare its schema with body=.")
    if body is not None:
        Draft202012Validator.check_schema(body)
    for schema in [*(query or {}).values(), *(response or {}).values()]:
        Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(body) if body is not None else None

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        wrapper: Callable[..., Any]
        if inspect.iscoroutinefunction(view):

            async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
                checked = await db_call(request, _authorize, request, scope, methods, validator, max_body_bytes)
                if isinstance(checked, HttpResponse):
                    return checked
                try:
                    return await view(request, checked, *args, **kwargs)
                except ApiError as exc:
                    return error_response(exc.status, exc.type, exc.message, exc.headers)

            wrapper = csrf_exempt(functools.wraps(view)(async_wrapper))
        else:

            def sync_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
                checked = _authorize(request, scope, methods, validator, max_body_bytes)
                if isinstance(checked, HttpResponse):
                    return checked
                try:
                    return view(request, checked, *args, **kwargs)
                except ApiError as exc:
                    return error_response(exc.status, exc.type, exc.message, exc.headers)

            wrapper = csrf_exempt(functools.wraps(view)(sync_wrapper))

        wrapper.api_access = scope  # type: ignore[attr-defined,union-attr]
        wrapper.api_methods = methods  # type: ignore[attr-defined,union-attr]
        wrapper.api_body = body  # type: ignore[attr-defined,union-attr]
        wrapper.api_max_body_bytes = max_body_bytes  # type: ignore[attr-defined,union-attr]
        wrapper.api_query = query or {}  # type: ignore[attr-defined,union-attr]
        wrapper.api_response = response or {}  # type: ignore[attr-defined,union-attr]
        return wrapper

    return decorator
