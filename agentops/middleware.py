"""Request guards that run before any view: bad input gets a clear 4xx, never a 500."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from agentops.logs import log_context


def _bad_request(request: HttpRequest, message: str, status: int = 400) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"error": {"type": "invalid_request", "message": message}}, status=status)
    return HttpResponse(message, status=status, content_type="text/plain")


class RequestGuardMiddleware:
    """Refuses NUL bytes anywhere in the path, query or form body, and oversized bodies.

    PostgreSQL cannot store NUL in text columns; without this guard such input reaches the
    database and turns into a 500.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from django.conf import settings

        if "\x00" in request.path or "%00" in request.META.get("QUERY_STRING", ""):
            return _bad_request(request, "NUL bytes are not allowed in the URL.")
        length = request.META.get("CONTENT_LENGTH") or "0"
        try:
            size = int(length)
        except ValueError:
            return _bad_request(request, "Invalid Content-Length.")
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if size > limit:
            return _bad_request(request, f"Request body too large (limit {limit} bytes).", status=413)
        if request.method in ("POST", "PUT", "PATCH") and size:
            body = request.body
            if b"\x00" in body or b"%00" in body or b"\\u0000" in body:
                return _bad_request(request, "NUL bytes are not allowed in the request body.")
        return self.get_response(request)


class LogContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = log_context.set({"path": request.path})
        try:
            return self.get_response(request)
        finally:
            log_context.reset(token)
