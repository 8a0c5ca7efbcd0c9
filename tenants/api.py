"""The JSON API's front door: Bearer tenant keys, scopes, a per-key rate limit, JSON errors.

Every API view is wrapped by :func:`api_view`; the isolation tests walk ``/api/`` URLs and fail
for any view without the ``api_access`` attribute it sets. Errors always have the shape
``{"error": {"type": …, "message": …}}``.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import close_old_connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

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

    @property
    def tenant(self) -> Tenant:
        return self.key.tenant


def json_body(request: HttpRequest, *, max_bytes: int = 64 * 1024) -> dict[str, Any]:
    if len(request.body) > max_bytes:
        raise ApiError(413, "request_too_large", f"Body over {max_bytes} bytes.")
    ctype = request.META.get("CONTENT_TYPE", "")
    if ctype and not ctype.startswith("application/json"):
        raise ApiError(415, "unsupported_media_type", "Send application/json.")
    try:
        data = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"Malformed JSON: {exc.__class__.__name__}.")
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "The body must be a JSON object.")
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


def _authorize(request: HttpRequest, scope: str, methods: tuple[str, ...]) -> ApiContext | HttpResponse:
    """Method, Bearer key, scope and rate limit: the context for the view, or the error to answer."""
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
    return ApiContext(key=key)


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


def api_view(*, scope: str, methods: tuple[str, ...] = ("GET",)) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Wraps a sync or an async view; an async view gets its key checked through :func:`db_call`."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        wrapper: Callable[..., Any]
        if inspect.iscoroutinefunction(view):

            async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
                checked = await db_call(request, _authorize, request, scope, methods)
                if isinstance(checked, HttpResponse):
                    return checked
                try:
                    return await view(request, checked, *args, **kwargs)
                except ApiError as exc:
                    return error_response(exc.status, exc.type, exc.message, exc.headers)

            wrapper = csrf_exempt(functools.wraps(view)(async_wrapper))
        else:

            def sync_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
                checked = _authorize(request, scope, methods)
                if isinstance(checked, HttpResponse):
                    return checked
                try:
                    return view(request, checked, *args, **kwargs)
                except ApiError as exc:
                    return error_response(exc.status, exc.type, exc.message, exc.headers)

            wrapper = csrf_exempt(functools.wraps(view)(sync_wrapper))

        wrapper.api_access = scope  # type: ignore[attr-defined,union-attr]
        wrapper.api_methods = methods  # type: ignore[attr-defined,union-attr]
        return wrapper

    return decorator
