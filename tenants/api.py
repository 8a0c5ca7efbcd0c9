"""The JSON API's front door, on django-ninja: Bearer tenant keys with scopes, the per-key rate
limit, body admission, the strict JSON parser, and the one error shape.

Each app's ``api.py`` builds a :class:`ninja.Router` whose operations declare ``auth=ApiKeyAuth("<scope>")``;
``agentops/api.py`` mounts the routers on one ``NinjaAPI`` at ``/api/v1/`` with :class:`StrictJsonParser`
and exception handlers that answer every error as ``{"error": {"type": …, "message": …}}``.
Request bodies are :class:`RequestBody` schemas (strict, unknown fields refused); responses are
:class:`ResponseBody` schemas, so the OpenAPI document ninja generates is what the code enforces.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from typing import Annotated, Any, TypeVar

import django_rq
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import close_old_connections
from django.http import HttpRequest, JsonResponse
from ninja import Schema
from ninja.parser import Parser
from ninja.security.http import HttpAuthBase
from pydantic import BeforeValidator, ConfigDict, Field

from agentops.jsoninput import JsonInputError, loads
from tenants.models import ApiKey
from tenants.services import api_key_authenticate

log = logging.getLogger(__name__)

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_MAX_BODY_BYTES = 64 * 1024


class ApiError(Exception):
    """Raised anywhere under an API operation; answered as ``{"error": {"type", "message"}}``."""

    def __init__(self, status: int, type_: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.type, self.message, self.headers = status, type_, message, headers or {}


def error_response(status: int, type_: str, message: str, headers: dict[str, str] | None = None) -> JsonResponse:
    resp = JsonResponse({"error": {"type": type_, "message": message}}, status=status)
    for k, v in (headers or {}).items():
        resp[k] = v
    return resp


# --- schemas ---------------------------------------------------------------------------------

class RequestBody(Schema):
    """A request body: JSON types exactly (no "1" for 1, no true for 1), unknown fields refused."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ResponseBody(Schema):
    """A response body: every field always sent, nothing undeclared."""

    model_config = ConfigDict(extra="forbid")


class ErrorDetail(ResponseBody):
    type: str
    message: str


class Error(ResponseBody):
    error: ErrorDetail


# Money leaves the API as a normalised decimal string (tenants.money.money_str), never a float.
Money = Annotated[str, Field(pattern=r"^-?[0-9]+(\.[0-9]+)?$", description="Exact decimal, as a string.")]


def _whole_number(value: Any) -> Any:
    # Python's int() (and pydantic's) take " 5", "+5", "1_0", "1.0" and non-ASCII digits; a query
    # parameter here is plain ASCII digits, the range is the field's own ge/le.
    if isinstance(value, str) and not (value.isascii() and value.isdigit() and len(value) <= 12):
        raise ValueError("must be a whole number")
    return value


def _iso_datetime(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        if not value.isascii() or len(value) > 40:
            raise ValueError
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an ISO 8601 datetime, e.g. 2026-01-31T09:00:00Z")
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _iso_date(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        if len(value) != 10 or not value.isascii():
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError("must be a date like 2026-01-31")


# Query parameter types: what the document says (integer, date-time, date), read strictly.
QueryInt = Annotated[int, BeforeValidator(_whole_number)]
QueryDateTime = Annotated[datetime, BeforeValidator(_iso_datetime), Field(description="ISO 8601; UTC when no offset.")]
QueryDate = Annotated[date, BeforeValidator(_iso_date)]


# --- the parser ------------------------------------------------------------------------------

class StrictJsonParser(Parser):
    """Every API body goes through :func:`agentops.jsoninput.loads`: depth, NaN, lone surrogates
    and NUL are a 400 at the door instead of a 500 at the database. An empty body is ``{}``."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        try:
            data = loads(request.body or b"{}")
        except JsonInputError as exc:
            raise ApiError(400, exc.kind, exc.message)
        if not isinstance(data, dict):
            raise ApiError(400, "invalid_json", "The body must be a JSON object.")
        return data


# --- the door: key, scope, rate limit, body admission -----------------------------------------

def _rate_limited(key: ApiKey) -> int | None:
    """Fixed one-minute window in Redis; returns seconds to wait when over the limit."""
    limit = key.tenant.tier.api_rate_limit_per_minute
    window = int(time.time() // 60)
    try:
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


def _admit(request: HttpRequest, scope: str, max_body_bytes: int) -> ApiKey:
    """The key behind the request, or :class:`ApiError`: 401, 403, 429, then 413/415 for the body
    (before ninja parses it, and before any object lookup: the answer to a bad body does not
    depend on what exists)."""
    auth = request.META.get("HTTP_AUTHORIZATION", "")
    if not auth.startswith("Bearer "):
        raise ApiError(401, "authentication_error", "Send Authorization: Bearer <API key>.")
    key = api_key_authenticate(auth[7:].strip())
    if key is None:
        raise ApiError(401, "authentication_error", "Invalid or revoked API key.")
    if scope not in key.scopes:
        raise ApiError(403, "permission_error", f"This key lacks the '{scope}' scope.")
    wait = _rate_limited(key)
    if wait is not None:
        raise ApiError(429, "rate_limit_error", "Too many requests for this key.", {"Retry-After": str(wait)})
    if request.method in BODY_METHODS:
        if len(request.body) > max_body_bytes:
            raise ApiError(413, "request_too_large", f"Body over {max_body_bytes} bytes.")
        ctype = request.META.get("CONTENT_TYPE", "")
        if ctype and not ctype.startswith("application/json"):
            raise ApiError(415, "unsupported_media_type", "Send application/json.")
    return key


class ApiKeyAuth(HttpAuthBase):
    """ninja auth for one scope: ``request.auth`` is the tenant's :class:`tenants.models.ApiKey`.

    The document lists every operation under the ``ApiKey`` bearer scheme with its scope
    (agentops/api.py). ``max_body_bytes`` is this operation's body limit (413 above it).
    """

    openapi_scheme = "bearer"
    openapi_bearerFormat = "aok_<prefix>_<secret>"
    openapi_description = "A tenant API key; its scopes are runs, escalations, spend."

    def __init__(self, scope: str, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES):
        super().__init__()
        self.scope, self.max_body_bytes = scope, max_body_bytes

    def __call__(self, request: HttpRequest) -> ApiKey:
        return _admit(request, self.scope, self.max_body_bytes)


class AsyncApiKeyAuth(ApiKeyAuth):
    """For async operations (event streams): the same checks, on the API's database threads."""

    async def __call__(self, request: HttpRequest) -> ApiKey:  # type: ignore[override]
        return await db_call(request, _admit, request, self.scope, self.max_body_bytes)


def api_key(request: HttpRequest) -> ApiKey:
    """The key the door admitted (ninja sets ``request.auth``)."""
    key: ApiKey = request.auth  # type: ignore[attr-defined]
    return key


# --- database calls from async operations ----------------------------------------------------

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
    """Run database code from an async API operation.

    Under ASGI it runs on a small shared pool of ``EVENTS_DB_THREADS`` threads, so a process holds
    at most that many database connections however many streams are open (Django's default would
    give each request a thread, and a connection, of its own). Under WSGI (and the test client) it
    runs in the request's own thread, on the request's connection.
    """
    if isinstance(request, ASGIRequest):
        return await sync_to_async(_in_db_thread(func), thread_sensitive=False, executor=_events_db_executor())(*args, **kwargs)
    return await sync_to_async(func, thread_sensitive=True)(*args, **kwargs)


# --- ninja's validation errors in our words ----------------------------------------------------

def validation_message(errors: list[dict[str, Any]]) -> str:
    """A short message naming the field; never an echo of a (possibly huge) value."""
    unknown = []
    for err in errors:
        if err.get("type") == "extra_forbidden":
            unknown.append(str(err["loc"][-1]))
    if unknown:
        return f"Unknown fields: {', '.join(unknown)[:200]}."
    err = errors[0]
    loc = list(err.get("loc", ()))
    # ("body", "<param>", field, …) for a body; ("query", name) for a query parameter.
    path = loc[2:] if loc[:1] == ["body"] else loc[1:]
    name = ".".join(str(p) for p in path)[:100]
    where = f"'{name}'" if name else "The body"
    if err.get("type") == "missing":
        return f"{where} is required."
    msg = str(err.get("msg", "is invalid")).removeprefix("Value error, ")
    if err.get("type") == "value_error":
        return f"{where} {msg}."[:300]
    return f"{where}: {msg}."[:300]
