"""The JSON API's front door: Bearer tenant keys, scopes, a per-key rate limit, JSON errors.

Every API view is wrapped by :func:`api_view`; the isolation tests walk ``/api/`` URLs and fail
for any view without the ``api_access`` attribute it sets. Errors always have the shape
``{"error": {"type": …, "message": …}}``.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


def api_view(*, scope: str, methods: tuple[str, ...] = ("GET",)) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
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
                return view(request, ApiContext(key=key), *args, **kwargs)
            except ApiError as exc:
                return error_response(exc.status, exc.type, exc.message, exc.headers)

        wrapper.api_access = scope  # type: ignore[attr-defined]
        wrapper.api_methods = methods  # type: ignore[attr-defined]
        return wrapper

    return decorator
